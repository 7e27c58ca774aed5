/**
 * Draws latency over time across restarts as an SVG (no dependency): one panel per contender,
 * the max latency of each 10 ms of scheduled requests on a log scale, failed requests as red
 * marks, restart windows shaded. Usage: node --import tsx bench/plot.ts [results.json] [out.svg]
 */
import fs from 'node:fs';
import path from 'node:path';
import type { PlotSeries } from './handoff.ts';
import { benchDir } from './lib/procs.ts';

const WIDTH = 960;
const PANEL = 160;
const MARGIN = { left: 64, right: 16, top: 34, bottom: 40 };
const Y_MIN = 0.1;
const Y_MAX = 3000;

function escape(text: string): string {
  return text.replace(/[<>&"]/g, (char) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[char] ?? char);
}

export function renderPlot(series: readonly PlotSeries[], title: string): string {
  const height = MARGIN.top + series.length * (PANEL + 34) + MARGIN.bottom;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  // Up to shortly after the last shaded window (restarts are 300 ms apart): later ones would show unshaded.
  const end = (item: PlotSeries) => Math.min(item.maxLatency.length * item.bucketMs, (item.windows[item.windows.length - 1]?.to ?? 0) + 250);
  const span = Math.max(...series.map(end));
  const within = (item: PlotSeries, bucket: number) => bucket * item.bucketMs <= end(item);
  const x = (msFromStart: number) => MARGIN.left + (msFromStart / span) * plotWidth;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="${MARGIN.left}" y="20" font-size="14" font-weight="bold">${escape(title)}</text>`,
  ];
  series.forEach((item, index) => {
    const top = MARGIN.top + index * (PANEL + 34) + 16;
    const y = (value: number) => top + PANEL - ((Math.log10(Math.min(Y_MAX, Math.max(Y_MIN, value))) - Math.log10(Y_MIN)) / (Math.log10(Y_MAX) - Math.log10(Y_MIN))) * PANEL;
    const failed = item.failures.reduce((sum, count, bucket) => sum + (within(item, bucket) ? count : 0), 0);
    parts.push(`<text x="${MARGIN.left}" y="${top - 4}" font-size="12" font-weight="bold">${escape(item.label)}${failed ? ` — ${failed} failed requests (red marks under the panel)` : ' — 0 failed requests'}</text>`);
    parts.push(`<rect x="${MARGIN.left}" y="${top}" width="${plotWidth}" height="${PANEL}" fill="none" stroke="#999"/>`);
    for (const window of item.windows) {
      parts.push(`<rect x="${x(window.from).toFixed(1)}" y="${top}" width="${Math.max(1, x(window.to) - x(window.from)).toFixed(1)}" height="${PANEL}" fill="#f2d98c" fill-opacity="0.45"/>`);
    }
    for (const tick of [0.1, 1, 10, 100, 1000]) {
      parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y(tick).toFixed(1)}" y2="${y(tick).toFixed(1)}" stroke="#ddd"/>`);
      parts.push(`<text x="${MARGIN.left - 6}" y="${(y(tick) + 4).toFixed(1)}" text-anchor="end">${tick} ms</text>`);
    }
    let line = '';
    let pen = false;
    item.maxLatency.forEach((value, bucket) => {
      // A bucket with no answered request breaks the line: no answer is not a latency.
      if (value === null || !within(item, bucket)) {
        pen = false;
        return;
      }
      const px = x(bucket * item.bucketMs).toFixed(1);
      line += `${pen ? 'L' : 'M'}${px},${y(value).toFixed(1)}`;
      pen = true;
    });
    parts.push(`<path d="${line}" fill="none" stroke="#1f5fa8" stroke-width="1"/>`);
    // Failed requests in a strip under the panel: one mark per 10 ms that had any, taller for more.
    const strip = top + PANEL + 2;
    item.failures.forEach((count, bucket) => {
      if (count === 0 || !within(item, bucket)) return;
      const px = x(bucket * item.bucketMs).toFixed(1);
      parts.push(`<line x1="${px}" x2="${px}" y1="${strip}" y2="${strip + Math.min(10, 3 + count)}" stroke="#d62728" stroke-width="2"/>`);
    });
  });
  const axisY = MARGIN.top + series.length * (PANEL + 34) + 8;
  for (let second = 0; second * 1000 <= span; second++) {
    parts.push(`<line x1="${x(second * 1000).toFixed(1)}" x2="${x(second * 1000).toFixed(1)}" y1="${axisY - 6}" y2="${axisY}" stroke="#666"/>`);
    parts.push(`<text x="${x(second * 1000).toFixed(1)}" y="${axisY + 12}" text-anchor="middle">${second} s</text>`);
  }
  parts.push(`<text x="${MARGIN.left + plotWidth / 2}" y="${axisY + 28}" text-anchor="middle">time (requests by scheduled send time); blue: max latency per 10 ms, log scale; shaded: restart windows</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** Picks the plotted series (keep-alive on) from a handoff section's data. */
export function plotFromHandoff(data: { results: Array<{ keepAlive: boolean; plot?: PlotSeries | null; rate: number }> }): string | undefined {
  const series = data.results.filter((result) => result.keepAlive && result.plot).map((result) => result.plot as PlotSeries);
  if (series.length === 0) return undefined;
  const rate = data.results[0]?.rate ?? 0;
  return renderPlot(series, `Latency across restarts under ${rate} req/s, keep-alive on (first ${series[0]?.windows.length ?? 0} restarts)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const input = process.argv[2] ?? path.join(benchDir, 'results/latest.json');
  const output = process.argv[3] ?? path.join(benchDir, 'results/handoffs.svg');
  const parsed = JSON.parse(fs.readFileSync(input, 'utf8')) as { sections?: Record<string, unknown>; results?: unknown };
  const handoff = (parsed.sections?.handoff ?? parsed) as Parameters<typeof plotFromHandoff>[0];
  const svg = plotFromHandoff(handoff);
  if (!svg) throw new Error(`${input} has no plotted series (run the handoff section with keep-alive on)`);
  fs.writeFileSync(output, svg);
  process.stdout.write(`${output}\n`);
}
