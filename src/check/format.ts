/** The report of `overseer check` as a person reads it on a terminal. */
import type { CheckReport, RunReport } from './report.js';

const ms = (value: number | undefined): string => {
  if (value === undefined || !Number.isFinite(value)) return '–';
  return value >= 100 ? `${Math.round(value)}` : value >= 10 ? value.toFixed(1) : value.toFixed(2);
};

function spread(values: readonly number[]): string {
  if (values.length === 0) return '–';
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted[Math.floor((sorted.length - 1) / 2)] as number;
  return `median ${ms(middle)}, max ${ms(sorted[sorted.length - 1])} ms`;
}

function runLines(run: RunReport): string[] {
  const f = run.failures;
  const done = run.handoffs.filter((each) => each.ok).length;
  const lines = [
    `keep-alive ${run.keepAlive ? 'on ' : 'off'}: ${run.requests} requests, ${run.failed} failed `
      + `(refused ${f.refused}, reset ${f.reset + f.other}, timeout ${f.timeout}, non-2xx ${f.status}); `
      + `${done}/${run.handoffs.length} handoffs; p99 steady ${ms(run.steadyP99)} ms, in handoffs ${ms(run.windowP99)} ms`,
    `  ready ${spread(run.handoffs.flatMap((each) => (each.readyMs === undefined ? [] : [each.readyMs])))}; `
      + `drain ${spread(run.handoffs.flatMap((each) => (each.drainMs === undefined ? [] : [each.drainMs])))}`,
    `  per handoff (ready/drain ms): ${run.handoffs.map((each) => (each.ok ? `${ms(each.readyMs)}/${ms(each.drainMs)}${each.drainTimedOut ? '!' : ''}` : `failed (${each.error?.code ?? '?'})`)).join(' ')}`,
  ];
  if (run.stoppedEarly) lines.push(`  stopped early: ${run.stoppedEarly}`);
  const examples = Object.entries(run.examples).map(([kind, text]) => `${kind}: ${text}`);
  if (examples.length > 0) lines.push(`  first failures: ${examples.join('; ')}`);
  if (run.clientLagP99 > 50) lines.push(`  (this client's own event loop lagged ${ms(run.clientLagP99)} ms at p99: the machine is busy, latencies are pessimistic)`);
  return lines;
}

export function formatReport(report: CheckReport): string {
  const lines = [
    `overseer check: ${report.target}`,
    `  ${report.address || 'no address'}${report.path}, ${report.rate} req/s, ${report.durationMs} ms steady, ${report.handoffsAsked} handoffs per run; `
      + `terminateTimeout ${report.terminateTimeout} ms, readyTimeout ${report.readyTimeout} ms; first child ready in ${ms(report.firstReadyMs)} ms`,
    '',
    ...report.runs.flatMap(runLines),
  ];
  if (report.diagnoses.length > 0) {
    lines.push('');
    for (const diagnosis of report.diagnoses) {
      lines.push(`${diagnosis.severity === 'error' ? '✗' : '!'} ${diagnosis.title} [${diagnosis.code}]`, `    ${diagnosis.detail}`, `    fix: ${diagnosis.fix}`);
    }
  }
  lines.push('', report.ok
    ? `✓ ${report.failed} failed requests across ${report.runs.reduce((sum, run) => sum + run.handoffs.length, 0)} handoffs`
    : `✗ ${report.failed} failed requests${report.diagnoses.some((each) => each.severity === 'error') ? `; ${report.diagnoses.filter((each) => each.severity === 'error').length} problem(s) above` : ''}`);
  return `${lines.join('\n')}\n`;
}
