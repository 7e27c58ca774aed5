/**
 * The `--expires` flag: a duration from now (30d, 12h, 2w, 90m) or a time (an ISO-8601 date or
 * date-time), written into the manifest as ISO-8601 UTC to the second.
 */
import { OverseerError } from '../errors.js';

export const DEFAULT_EXPIRES = '30d';

const UNITS: Readonly<Record<string, number>> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
// A manifest is re-signed at every publish; one that stays valid for years defeats the point of expiry.
const MAX_DURATION_MS = 5 * 366 * 86_400_000;

/** The `expires` time the flag names, as the manifest stores it ("2026-12-31T00:00:00Z"). */
export function parseExpires(text: string, now: Date = new Date()): string {
  const fail = (problem: string): never => {
    throw new OverseerError(
      'ERR_OVERSEER_INVALID_CONFIG',
      `--expires ${JSON.stringify(text)} ${problem}; give a duration from now such as 30d, 12h or 2w, or a time such as 2026-12-31 or 2026-12-31T12:00:00Z`,
      { subject: 'release' },
    );
  };
  const duration = /^(\d+)\s*([mhdw])$/.exec(text.trim());
  let time: number;
  if (duration !== null) {
    const amount = Number(duration[1]);
    if (amount === 0) return fail('is no time at all: the manifest would expire at once');
    time = now.getTime() + amount * (UNITS[duration[2] as string] as number);
  } else if (/^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}))?$/.test(text.trim())) {
    const trimmed = text.trim();
    // A date alone means midnight UTC; a date-time must say its zone, so no machine's clock setting changes it.
    time = Date.parse(trimmed.length === 10 ? `${trimmed}T00:00:00Z` : trimmed.replace(' ', 'T'));
    if (!Number.isFinite(time)) return fail('is not a real date');
    if (trimmed.length === 10 && new Date(time).toISOString().slice(0, 10) !== trimmed) return fail('is not a real date');
  } else {
    return fail(/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?$/.test(text.trim()) ? 'has no time zone (add Z for UTC)' : 'is neither a duration nor a time');
  }
  if (time <= now.getTime()) return fail(`is in the past (now is ${formatUtc(now.getTime())})`);
  if (time - now.getTime() > MAX_DURATION_MS) return fail('is more than 5 years away; a manifest is re-signed at every publish, so keep its life short (days or weeks)');
  return formatUtc(time);
}

/** ISO-8601 UTC to the second, as a manifest stores `expires`. */
export function formatUtc(time: number): string {
  return `${new Date(Math.floor(time / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}
