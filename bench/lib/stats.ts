/**
 * Numbers and tables for the benchmark report: percentiles, latency summaries over time windows,
 * and markdown tables that print the same on a terminal and in docs/benchmarks.md.
 */
import { KINDS, type FailureKind, type LoadRecords } from '../../src/check/load.ts';
import { emptyFailures, percentile, type LatencySummary } from '../../src/check/summary.ts';

export { percentile, median, emptyFailures, summarize, totalFailures, type Window, type LatencySummary } from '../../src/check/summary.ts';

/** Summarizes the requests (by index) that `keep` accepts. */
export function summarizeWhere(records: LoadRecords, keep: (index: number) => boolean): LatencySummary {
  const latencies: number[] = [];
  const failures = emptyFailures();
  let requests = 0;
  for (let index = 0; index < records.scheduled.length; index++) {
    if (!keep(index)) continue;
    requests++;
    const kind = records.kind[index] as number;
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


/** ms with sensible precision. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return '–';
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function ratio(value: number, base: number): string {
  if (!Number.isFinite(value) || !Number.isFinite(base) || base === 0) return '–';
  return `${(value / base).toFixed(3)}×`;
}

export function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)}`;
}

export function int(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–';
}

export function failureText(failures: Record<FailureKind, number>): string {
  return `${failures.refused} / ${failures.reset} / ${failures.timeout} / ${failures.status}${failures.other ? ` (+${failures.other} other)` : ''}`;
}

/** A markdown table; each cell is already text. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`;
  return [line(headers), `| ${widths.map((width) => '-'.repeat(width)).join(' | ')} |`, ...rows.map(line)].join('\n');
}
