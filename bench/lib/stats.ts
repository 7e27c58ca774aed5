/**
 * Numbers and tables for the benchmark report: percentiles, latency summaries over time windows,
 * and markdown tables that print the same on a terminal and in docs/benchmarks.md.
 */
import type { FailureKind } from '../../src/check/load.ts';

export { percentile, median, emptyFailures, summarize, summarizeWhere, totalFailures, type Window, type LatencySummary } from '../../src/check/summary.ts';

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
