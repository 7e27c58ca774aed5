/**
 * Probation (docs/probation.md): (1) from a failed probation being detected to the previous build
 * serving again, split into what overseer does before the rollback handoff (persist the verdict,
 * restore `.previous`) and the previous build's boot, which keeping the old child idle would save;
 * the idle child's memory is what that would cost. (2) What the child's response counter costs
 * per request while a probation runs: a bare server with and without it, interleaved rounds,
 * keep-alive load at saturation (autocannon), and the server's CPU per answered request.
 */
import fs from 'node:fs';
import autocannon from 'autocannon';
import { startReleaseServer } from '../support/release-server.ts';
import { overseerAppSource } from './lib/apps.ts';
import { startBare } from './lib/contenders.ts';
import { internalModule } from './lib/internal.ts';
import { startPollingMaster } from './lib/polling-master.ts';
import { cpuMs, memory } from './lib/procs.ts';
import { log, runStandalone, type SectionOptions, type SectionResult } from './lib/section.ts';
import { table } from './lib/stats.ts';

/** A release that serves, then reports itself unhealthy: the probation fails at once, every time. */
function failingRelease(version: string): string {
  return overseerAppSource(version).replace(
    'await state.listen(http.createServer(handle));',
    "await state.listen(http.createServer(handle));\n    setTimeout(() => state.reportUnhealthy('bench'), 100);",
  );
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};
const fixed = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

interface RollbackTiming {
  /** probation-failed → handoff-started (rollback): remember, persist, restore `.previous`. */
  readonly beforeHandoffMs: number;
  /** handoff-started (rollback) → the previous build's child ready: its boot. */
  readonly bootMs: number;
  /** probation-failed → previous build ready (serving: it accepts on the shared socket). */
  readonly detectedToServingMs: number;
  /** RSS of the serving child before the upgrade: what an idle old child would hold through the probation. */
  readonly idleRss: number;
}

async function rollbacks(rounds: number): Promise<RollbackTiming[]> {
  const server = await startReleaseServer();
  const master = await startPollingMaster(server, '/app.mjs', { options: { probation: { duration: 60_000 } } }).catch(async (error: unknown) => {
    await server.close();
    throw error;
  });
  const timings: RollbackTiming[] = [];
  try {
    let serving = master.servingPid();
    for (let round = 1; round <= rounds; round++) {
      const from = master.events.length;
      const idleRss = memory(serving).rss;
      server.publish('/app.mjs', failingRelease(`1.1.${round}`));
      const failed = await master.waitEvent('probation-failed', undefined, 60_000, from);
      const started = await master.waitEvent('handoff-started', (event) => event.reason === 'rollback', 60_000, from);
      const ready = await master.waitEvent('child-ready', undefined, 60_000, master.events.indexOf(started));
      await master.waitEvent('upgrade-rolled-back', undefined, 60_000, from);
      serving = ready.pid;
      timings.push({ beforeHandoffMs: started.at - failed.at, bootMs: ready.at - started.at, detectedToServingMs: ready.at - failed.at, idleRss });
      log(`probation: rollback ${round}/${rounds}: ${ready.at - failed.at} ms from detection to the previous build ready`);
    }
  } finally {
    await master.stop();
    await server.close();
    fs.rmSync(master.dir, { recursive: true, force: true });
  }
  return timings;
}

interface CostRound {
  readonly contender: string;
  readonly requests: number;
  readonly rps: number;
  readonly cpuUsPerRequest: number;
}

async function counterCost(rounds: number, seconds: number): Promise<CostRound[]> {
  const results: CostRound[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const [contender, script] of [['bare', 'bare.cjs'], ['bare + probation counter', 'bare-probation.mjs']] as const) {
      const target = await startBare({ script, name: contender, env: { BENCH_RESPONSE_COUNTER_MODULE: await internalModule('src/core/response-counter.ts') } });
      try {
        const pid = target.servingPid();
        const cpuBefore = cpuMs(pid);
        const answer = await autocannon({ url: `http://127.0.0.1:${target.port}/`, connections: 16, duration: seconds, pipelining: 1 });
        const requests = answer.requests.total;
        results.push({ contender, requests, rps: answer.requests.average, cpuUsPerRequest: ((cpuMs(pid) - cpuBefore) * 1000) / Math.max(1, requests) });
        log(`probation: round ${round}/${rounds} ${contender}: ${Math.round(answer.requests.average)} req/s`);
      } finally {
        await target.stop();
      }
    }
  }
  return results;
}

export async function probationSection(options: SectionOptions): Promise<SectionResult> {
  const timings = await rollbacks(options.quick ? 3 : 10);
  const cost = await counterCost(options.quick ? 2 : 5, options.quick ? 2 : 5);
  const of = (contender: string) => cost.filter((item) => item.contender === contender);
  const bare = of('bare');
  const counted = of('bare + probation counter');
  const markdown = [
    `### Probation: from a failed probation to the previous build serving (${timings.length} rollbacks)`,
    '',
    table(['', 'median ms', 'max ms'], [
      ['detected → rollback handoff starts (persist the verdict, restore .previous)', fixed(median(timings.map((item) => item.beforeHandoffMs))), fixed(Math.max(...timings.map((item) => item.beforeHandoffMs)))],
      ['rollback handoff → previous build ready (its boot)', fixed(median(timings.map((item) => item.bootMs))), fixed(Math.max(...timings.map((item) => item.bootMs)))],
      ['detected → previous build serving', fixed(median(timings.map((item) => item.detectedToServingMs))), fixed(Math.max(...timings.map((item) => item.detectedToServingMs)))],
      ['with the old child kept idle (estimate: the boot saved)', fixed(median(timings.map((item) => item.beforeHandoffMs))), '-'],
    ]),
    '',
    `An idle old child would hold ${fixed(median(timings.map((item) => item.idleRss)) / 1024 / 1024, 1)} MB RSS (median, this trivial app) through every probation.`,
    '',
    `### Probation: the response counter's cost per request (${bare.length} interleaved rounds, keep-alive, 16 connections)`,
    '',
    table(['contender', 'req/s median', 'ratio to bare', 'server CPU µs/request median'], [
      ['bare', fixed(median(bare.map((item) => item.rps))), '1.00', fixed(median(bare.map((item) => item.cpuUsPerRequest)), 1)],
      ['bare + probation counter', fixed(median(counted.map((item) => item.rps))), fixed(median(counted.map((item) => item.rps)) / median(bare.map((item) => item.rps)), 2), fixed(median(counted.map((item) => item.cpuUsPerRequest)), 1)],
    ]),
    '',
    'The counter is subscribed only while a probation runs; outside it the cost is nil.',
  ].join('\n');
  return { name: 'probation', markdown, data: { timings, cost } };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('probation', probationSection);
