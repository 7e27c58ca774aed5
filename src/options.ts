/**
 * The one option check of overseer, shared by run()'s config, `overseer run`'s file and flags,
 * app.json, the fetchers and the supervisor. Each describes its options as a spec of rules and
 * calls assertOptions(), which rejects a non-object, unknown keys (with "did you mean"), missing
 * required options and wrong values with ERR_OVERSEER_INVALID_CONFIG. The caller passes
 * OptionNames saying how the user wrote each option (`config.address`, `--listen`,
 * `listeners[1].address`, `web/app.json: command`), so no message is ever rewritten afterwards.
 */
import { OverseerError } from './errors.js';

/** How errors name options: what has them, and how the user wrote each one. */
export interface OptionNames {
  /** What the options belong to, for "X has no option": `config`, `HttpFetcher`, `web/app.json`. */
  readonly owner: string;
  /** The option at `path` (`address`, `verify.sha256`, `addresses[1]`) as the user wrote it. */
  readonly of: (path: string) => string;
}

/** Names as `owner.path`, unless `of` says otherwise (a flag, a JSON path in a file). */
export function optionNames(owner: string, of: (path: string) => string = (path) => `${owner}.${path}`): OptionNames {
  return { owner, of };
}

/** The names of the options inside option `key` (an object-valued option such as `verify`). */
export function nestedNames(names: OptionNames, key: string): OptionNames {
  return { owner: names.of(key), of: (path) => names.of(`${key}.${path}`) };
}

/** One option's check. `test` is never called with undefined (absent options are skipped). */
export interface OptionRule {
  /** What a valid value is, completing "X.option must be ...". */
  readonly expected: string;
  readonly test: (value: unknown) => boolean;
  readonly required?: boolean;
  /**
   * A deeper check once `test` passed, for values with parts (an address, a nested object):
   * it throws its own error, naming the part with `names`.
   */
  readonly inner?: (value: unknown, names: OptionNames, key: string) => void;
}

export type OptionSpec = Readonly<Record<string, OptionRule>>;

/** Longest timer Node can arm; larger delays fire after 1 ms. */
const MAX_DELAY = 2 ** 31 - 1;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE_FORBIDDEN = /[\r\n\0]/;

export function rule(expected: string, test: (value: unknown) => boolean): OptionRule {
  return { expected, test };
}

export function required(base: OptionRule): OptionRule {
  return { ...base, required: true };
}

/** `base` plus a deeper check of the value's parts (see OptionRule.inner). */
export function withInner(base: OptionRule, inner: NonNullable<OptionRule['inner']>): OptionRule {
  return { ...base, inner };
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A value any of the rules accepts, e.g. an asset given as a name, a RegExp or a function. */
export function anyOf(...rules: OptionRule[]): OptionRule {
  return rule(rules.map((each) => each.expected).join(' or '), (value) => rules.some((each) => each.test(value)));
}

export function isHttpUrl(value: unknown): value is string | URL {
  if (typeof value !== 'string' && !(value instanceof URL)) return false;
  if (!URL.canParse(String(value))) return false;
  const { protocol } = new URL(String(value));
  return protocol === 'http:' || protocol === 'https:';
}

/** `http://` (or `https://`) and then a host; a URL object has been parsed already and has one. */
const WRITTEN_WITH_HOST = /^https?:[\\/]{2}[^\\/?#]/i;

/**
 * Refuses an http(s) URL written without a host (`http:///app.mjs`, `https:app.mjs`): the URL
 * parser does not refuse them but takes the first path segment as the host, so every poll would
 * go to a host named `app.mjs`.
 */
function assertHttpUrlHost(value: unknown, names: OptionNames, key: string): void {
  if (typeof value !== 'string' || WRITTEN_WITH_HOST.test(value.trim())) return;
  const read = new URL(value);
  const subject = names.of(key);
  throw new OverseerError(
    'ERR_OVERSEER_INVALID_CONFIG',
    `${subject} ${describeValue(value)} has no host after "${read.protocol}//" (the URL parser would read ${JSON.stringify(read.host)} as the host); ` +
      `write the server's name after the two slashes, such as "${read.protocol}//releases.example.com/app.mjs"`,
    { subject },
  );
}

function isHeaders(value: unknown): value is Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return Object.entries(value).every(
    ([name, headerValue]) => HEADER_NAME.test(name) && typeof headerValue === 'string' && !HEADER_VALUE_FORBIDDEN.test(headerValue),
  );
}

/** Ready-made rules; fetchers add their own with rule(). */
export const rules = {
  string: rule('a string', (value) => typeof value === 'string'),
  nonEmptyString: rule('a non-empty string', (value) => typeof value === 'string' && value !== ''),
  boolean: rule('true or false', (value) => typeof value === 'boolean'),
  function: rule('a function', (value) => typeof value === 'function'),
  regExp: rule('a RegExp', (value) => value instanceof RegExp),
  interval: rule(
    `a poll interval in milliseconds (a number from 0 to ${MAX_DELAY})`,
    (value) => typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_DELAY,
  ),
  timeout: rule(
    `a timeout in milliseconds (a number from 1 to ${MAX_DELAY})`,
    (value) => typeof value === 'number' && Number.isFinite(value) && value >= 1 && value <= MAX_DELAY,
  ),
  httpUrl: withInner(rule('an absolute http: or https: URL with a host (a string or a URL)', isHttpUrl), assertHttpUrlHost),
  headers: rule(
    'an object of header names to string values (names are HTTP tokens; values have no CR, LF or NUL)',
    isHeaders,
  ),
} as const;

/** How a value reads in an error message: short, typed, and never a header's secret value. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'function') return 'a function';
  if (value instanceof URL) return `the URL ${JSON.stringify(value.href)}`;
  if (value instanceof RegExp) return String(value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') {
    const keys = Object.keys(value);
    return keys.length === 0 ? 'an empty object' : `an object with keys ${keys.map((key) => JSON.stringify(key)).join(', ')}`;
  }
  return String(value);
}

/** The error for one bad option, for checks a spec cannot express (one option needing another). */
export function invalidOption(subject: string, expected: string, given: unknown): OverseerError {
  return new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${subject} must be ${expected}; got ${describeValue(given)}`, {
    subject,
  });
}

/**
 * Throws ERR_OVERSEER_INVALID_CONFIG unless `options` is a plain object whose keys are all in
 * `spec`, with every required one present and every present one accepted by its rule.
 * An option set to undefined counts as absent. `where` is the owner's name (a fetcher's class
 * name; options are then named `Owner.option`) or OptionNames.
 */
export function assertOptions(where: string | OptionNames, options: unknown, spec: OptionSpec): void {
  const names = typeof where === 'string' ? optionNames(where) : where;
  const known = Object.keys(spec);
  if (!isPlainObject(options)) {
    const needed = known.filter((key) => spec[key]?.required);
    throw invalidOption(`${names.owner} options`, needed.length > 0 ? `an object such as { ${needed.join(', ')} }` : `an object of options (${known.join(', ')})`, options);
  }
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(spec, key)) continue;
    throw unknownOption(names, key, known);
  }
  for (const [key, check] of Object.entries(spec)) {
    const value = options[key];
    if (value === undefined) {
      if (check.required === true) throw invalidOption(names.of(key), `given (${check.expected})`, value);
      continue;
    }
    if (!check.test(value)) throw invalidOption(names.of(key), check.expected, value);
    check.inner?.(value, names, key);
  }
}

/** The error for a key no spec knows, with the nearest known one as "did you mean". */
export function unknownOption(names: OptionNames, key: string, known: readonly string[]): OverseerError {
  const hint = closest(key, known);
  return new OverseerError(
    'ERR_OVERSEER_INVALID_CONFIG',
    `${names.owner} has no option ${JSON.stringify(key)}${hint === undefined ? '' : ` (did you mean ${JSON.stringify(hint)}?)`}; ` +
      `its options are ${known.join(', ')}`,
    { subject: names.of(key) },
  );
}

/** The known key one edit (two for long keys) from a misspelt one, for "did you mean". */
export function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = key.length >= 8 ? 3 : 2;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
