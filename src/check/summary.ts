/**
 * Latency summaries over time windows, shared by `overseer check` and the benchmarks: which
 * requests were scheduled inside which windows, how many failed of each kind, and percentiles.
 */
import { KINDS, type FailureKind, type LoadRecords } from './load.js';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

export interface Window {
  readonly from: number;
  readonly to: number;
}

export interface LatencySummary {
  readonly requests: number;
  readonly ok: number;
  readonly failures: Record<FailureKind, number>;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

export function emptyFailures(): Record<FailureKind, number> {
  return { refused: 0, reset: 0, timeout: 0, status: 0, other: 0 };
}

/** Summarizes the requests whose scheduled time falls in any of `windows` (all when undefined). */
export function summarize(records: LoadRecords, windows?: readonly Window[]): LatencySummary {
  if (!windows) return summarizeWhere(records, () => true);
  const sorted = [...windows].sort((a, b) => a.from - b.from);
  // Requests come in scheduled order, so one cursor walks the windows once.
  let cursor = 0;
  return summarizeWhere(records, (index) => {
    const at = records.scheduled[index] as number;
    while (cursor < sorted.length && (sorted[cursor] as Window).to < at) cursor++;
    const window = sorted[cursor];
    return window !== undefined && at >= window.from;
  });
}

/** Summarizes the requests (by index, in order) that `keep` accepts. */
export function summarizeWhere(records: LoadRecords, keep: (index: number) => boolean): LatencySummary {
  const latencies: number[] = [];
  const failures = emptyFailures();
  let requests = 0;
  for (let index = 0; index < records.scheduled.length; index++) {
    if (!keep(index)) continue;
    requests++;
    const kind = records.kind[index] as number;
    // A failure's "latency" is how long it took to fail; the latency columns are answered requests.
    if (kind === 0) latencies.push(records.latency[index] as number);
    else failures[KINDS[kind] as FailureKind]++;
  }
  latencies.sort((a, b) => a - b);
  return {
    requests,
    ok: latencies.length,
    failures,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    p999: percentile(latencies, 99.9),
    max: latencies.length ? (latencies[latencies.length - 1] as number) : Number.NaN,
  };
}

export function totalFailures(summary: Pick<LatencySummary, 'failures'>): number {
  return Object.values(summary.failures).reduce((sum, count) => sum + count, 0);
}
