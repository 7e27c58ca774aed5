/**
 * Section 2: restarts under a constant-rate (open-loop) load, keep-alive on and off. overseer's
 * ready-first handoff vs `pm2 reload` (cluster ×1, ×2), a stop-then-start master, and killing and
 * restarting a bare server; plus a control where a process boots beside the serving child
 * without any handoff, to tell boot CPU contention from handoff mechanics.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { now, sleep } from './lib/clock.ts';
import { startBare, startOverseer, startPm2, startStopStart, type Contender, type OverseerContender, type Restart } from './lib/contenders.ts';
import { runLoad, type LoadRecords } from '../src/check/load.ts';
import { Pm2 } from './lib/pm2.ts';
import { sampleMachineCpu, waitForQuiet } from './lib/procs.ts';
import { log, runStandalone, type SectionOptions, type SectionResult } from './lib/section.ts';
import { failureText, median, ms, summarize, summarizeWhere, table, totalFailures, type LatencySummary, type Window } from './lib/stats.ts';

export interface ScenarioResult {
  readonly contender: string;
  readonly keepAlive: boolean;
  readonly rate: number;
  readonly restarts: number;
  readonly total: LatencySummary;
  readonly steady: LatencySummary;
  readonly windows: LatencySummary;
  readonly phases: Record<string, LatencySummary>;
  readonly after: LatencySummary;
  /** Requests scheduled inside the windows, by who answered them and on what connection. */
  readonly answeredBy: Record<string, LatencySummary>;
  readonly restartMs: { median: number; max: number };
  readonly facts: Record<string, { median: number; max: number }>;
  readonly cpuBusy: Record<string, number>;
  readonly clientLagP99: number;
  readonly clientLagMax: number;
  readonly examples: LoadRecords['examples'];
  readonly plot: PlotSeries | undefined;
  /** Machine CPU busy share over 2 s just before the scenario started (other users' work). */
  readonly busyBefore: number;
}

export interface PlotSeries {
  readonly label: string;
  /** Epoch ms of bucket 0. */
  readonly t0: number;
  readonly bucketMs: number;
  /** Max latency of answered requests per bucket (ms), null when none. */
  readonly maxLatency: (number | null)[];
  readonly failures: number[];
  /** Restart windows, ms from t0. */
  readonly windows: { from: number; to: number }[];
}

const WARMUP_MS = 1000;

/** A control: a process boots the same bundle (echo-check mode: imports overseer, prints, exits) beside the serving child. */
export function bootOnlyControl(target: OverseerContender, bundle: string): Contender {
  return {
    ...target,
    name: 'overseer, boot-only control',
    async restart(): Promise<Restart> {
      const from = now();
      const child = spawn(process.execPath, [bundle], { env: { ...process.env, OVERSEER_ROLE: 'check:bench' }, stdio: 'ignore' });
      await once(child, 'exit');
      const to = now();
      return { from, to, phases: { boot: { from, to } }, facts: { bootMs: to - from } };
    },
  };
}

function plotSeries(label: string, records: LoadRecords, restarts: readonly Restart[], count: number): PlotSeries | undefined {
  const shown = restarts.slice(0, count);
  const first = shown[0];
  const last = shown[shown.length - 1];
  if (!first || !last) return undefined;
  const bucketMs = 10;
  const t0 = first.from - 1000;
  const buckets = Math.ceil((last.to + 1000 - t0) / bucketMs);
  const maxLatency: (number | null)[] = new Array(buckets).fill(null);
  const failures: number[] = new Array(buckets).fill(0);
  for (let index = 0; index < records.scheduled.length; index++) {
    const bucket = Math.floor(((records.scheduled[index] as number) - t0) / bucketMs);
    if (bucket < 0 || bucket >= buckets) continue;
    if (records.kind[index] === 0) maxLatency[bucket] = Math.max(maxLatency[bucket] ?? 0, records.latency[index] as number);
    else failures[bucket] = (failures[bucket] ?? 0) + 1;
  }
  return { label, t0, bucketMs, maxLatency, failures, windows: shown.map((restart) => ({ from: restart.from - t0, to: restart.to - t0 })) };
}

interface ScenarioSpec {
  readonly start: () => Promise<Contender>;
  readonly keepAlive: boolean;
  readonly rate: number;
  readonly restarts: number;
  readonly steadyMs: number;
  readonly gapMs: number;
  readonly plotRestarts: number;
}

export async function runScenario(spec: ScenarioSpec): Promise<ScenarioResult> {
  const busyBefore = await waitForQuiet();
  const contender = await spec.start();
  const cpu = sampleMachineCpu(50);
  const load = runLoad({ port: contender.port, keepAlive: spec.keepAlive, rate: spec.rate, durationMs: 30 * 60_000, timeoutMs: 3000 });
  const restarts: Restart[] = [];
  const servers: Array<{ old: number; next: number }> = [];
  let records: LoadRecords;
  try {
    await sleep(WARMUP_MS + spec.steadyMs);
    for (let index = 0; index < spec.restarts; index++) {
      const old = contender.servingPid();
      restarts.push(await contender.restart!());
      servers.push({ old, next: contender.servingPid() });
      await sleep(spec.gapMs);
    }
  } finally {
    load.stop();
    records = await load.done;
    cpu.stop();
    await contender.stop();
  }
  const begin = records.startedAt + WARMUP_MS;
  const firstRestart = restarts[0]?.from ?? records.endedAt;
  const steadyWindow: Window = { from: begin, to: firstRestart };
  const windows = restarts.map(({ from, to }) => ({ from, to }));
  const afterWindows = restarts.map(({ to }) => ({ from: to, to: to + spec.gapMs }));
  const phaseNames = [...new Set(restarts.flatMap((restart) => Object.keys(restart.phases)))];
  const phases: Record<string, LatencySummary> = {};
  for (const name of phaseNames) phases[name] = summarize(records, restarts.flatMap((restart) => (restart.phases[name] ? [restart.phases[name]] : [])));
  const facts: Record<string, { median: number; max: number }> = {};
  for (const name of [...new Set(restarts.flatMap((restart) => Object.keys(restart.facts)))]) {
    const values = restarts.map((restart) => restart.facts[name]).filter((value): value is number => Number.isFinite(value));
    facts[name] = { median: median(values), max: Math.max(...values) };
  }
  const busy = (list: readonly Window[]) => {
    const shares = list.map((window) => cpu.busyShare(window.from, window.to)).filter(Number.isFinite);
    return shares.length ? shares.reduce((sum, share) => sum + share, 0) / shares.length : Number.NaN;
  };
  const cpuBusy: Record<string, number> = { steady: cpu.busyShare(steadyWindow.from, steadyWindow.to), windows: busy(windows), after: busy(afterWindows) };
  for (const name of phaseNames) cpuBusy[name] = busy(restarts.flatMap((restart) => (restart.phases[name] ? [restart.phases[name]] : [])));
  const durations = restarts.map((restart) => restart.to - restart.from);
  // Which restart window a request falls in, and who answered it.
  const windowOf = new Map<number, number>();
  const firstAnswers = new Set<number>();
  restarts.forEach((restart, at) => {
    const next = servers[at]?.next;
    let seen = 0;
    for (let index = 0; index < records.scheduled.length; index++) {
      const time = records.scheduled[index] as number;
      if (time >= restart.from && time <= restart.to) windowOf.set(index, at);
      if (time >= restart.from && records.pid[index] === next && seen < 100) {
        seen++;
        firstAnswers.add(index);
      }
    }
  });
  const inWindow = (index: number, test: (pids: { old: number; next: number }) => boolean) => {
    const at = windowOf.get(index);
    const pids = at === undefined ? undefined : servers[at];
    return pids !== undefined && test(pids);
  };
  const answeredBy: Record<string, LatencySummary> = {
    'old process': summarizeWhere(records, (index) => inWindow(index, ({ old }) => records.pid[index] === old)),
    'new process, new connection': summarizeWhere(records, (index) => inWindow(index, ({ old }) => records.pid[index] !== old && records.pid[index] !== 0 && records.fresh[index] === 1)),
    'new process, reused connection': summarizeWhere(records, (index) => inWindow(index, ({ old }) => records.pid[index] !== old && records.pid[index] !== 0 && records.fresh[index] === 0)),
    "new process's first 100 answers": summarizeWhere(records, (index) => firstAnswers.has(index)),
  };
  return {
    contender: contender.name,
    keepAlive: spec.keepAlive,
    rate: spec.rate,
    restarts: restarts.length,
    total: summarize(records, [{ from: begin, to: Number.POSITIVE_INFINITY }]),
    steady: summarize(records, [steadyWindow]),
    windows: summarize(records, windows),
    phases,
    after: summarize(records, afterWindows),
    answeredBy,
    restartMs: { median: median(durations), max: Math.max(...durations) },
    facts,
    cpuBusy,
    clientLagP99: records.clientLagP99,
    clientLagMax: records.clientLagMax,
    examples: records.examples,
    plot: spec.plotRestarts > 0 ? plotSeries(contender.name, records, restarts, spec.plotRestarts) : undefined,
    busyBefore,
  };
}

const pct = (share: number | undefined) => (share === undefined || !Number.isFinite(share) ? '–' : `${Math.round(share * 100)}%`);

export function handoffTables(results: readonly ScenarioResult[]): string {
  const rows = results.map((result) => [
    result.contender,
    result.keepAlive ? 'on' : 'off',
    String(result.rate),
    String(result.restarts),
    String(result.total.requests),
    String(totalFailures(result.total)),
    failureText(result.total.failures),
    ms(result.steady.p99),
    ms(result.windows.p99),
    result.steady.p99 > 0 ? `${(result.windows.p99 / result.steady.p99).toFixed(2)}×` : '–',
    ms(result.windows.max),
    ms(result.after.p99),
    ms(result.restartMs.median),
  ]);
  const main = table(
    ['contender', 'keep-alive', 'req/s', 'restarts', 'requests', 'failed', 'refused / reset / timeout / non-2xx', 'steady p99 ms', 'window p99 ms', 'window/steady p99', 'window max ms', 'after p99 ms', 'restart median ms'],
    rows,
  );
  const phaseRows: string[][] = [];
  for (const result of results) {
    for (const [name, summary] of Object.entries(result.phases)) {
      phaseRows.push([result.contender, result.keepAlive ? 'on' : 'off', name, String(summary.requests), String(totalFailures(summary)), ms(summary.p50), ms(summary.p99), ms(summary.max), pct(result.cpuBusy[name])]);
    }
    phaseRows.push([result.contender, result.keepAlive ? 'on' : 'off', '(steady)', String(result.steady.requests), String(totalFailures(result.steady)), ms(result.steady.p50), ms(result.steady.p99), ms(result.steady.max), pct(result.cpuBusy.steady)]);
    phaseRows.push([result.contender, result.keepAlive ? 'on' : 'off', '(after, gap)', String(result.after.requests), String(totalFailures(result.after)), ms(result.after.p50), ms(result.after.p99), ms(result.after.max), pct(result.cpuBusy.after)]);
  }
  const byRows = results.flatMap((result) =>
    Object.entries(result.answeredBy).map(([name, summary]) => [result.contender, result.keepAlive ? 'on' : 'off', name, String(summary.requests), ms(summary.p50), ms(summary.p99), ms(summary.max)]),
  );
  const byTable = table(['contender', 'keep-alive', 'answered by (requests in restart windows)', 'requests', 'p50 ms', 'p99 ms', 'max ms'], byRows);
  const phasesTable = table(['contender', 'keep-alive', 'phase', 'requests', 'failed', 'p50 ms', 'p99 ms', 'max ms', 'machine CPU busy'], phaseRows);
  const factRows = results.flatMap((result) =>
    Object.entries(result.facts).map(([name, value]) => [result.contender, result.keepAlive ? 'on' : 'off', name, ms(value.median), ms(value.max)]),
  );
  const factsTable = table(['contender', 'keep-alive', 'timing', 'median ms', 'max ms'], factRows);
  const lagRows = results.map((result) => [result.contender, result.keepAlive ? 'on' : 'off', pct(result.busyBefore), ms(result.clientLagP99), ms(result.clientLagMax), Object.entries(result.examples).map(([kind, text]) => `${kind}: ${text}`).join('; ') || '–']);
  const lagTable = table(['contender', 'keep-alive', 'machine busy before', 'client loop lag p99 ms', 'client lag max ms', 'first failure of each kind'], lagRows);
  return [main, '', 'Latency by phase (requests by their scheduled time):', '', phasesTable, '', byTable, '', 'Restart timings (overseer: from its events; boot CPU = the new child\'s utime+stime when it reported ready):', '', factsTable, '', lagTable].join('\n');
}

export async function handoffSection(options: SectionOptions): Promise<SectionResult> {
  // A new connection per request costs a cluster primary (PM2) about 3× bare's CPU per request
  // (see throughput): at 2000/s without keep-alive PM2 saturates this 2-core machine and every
  // contender that pauses accepting melts down into 3 s timeouts, so that mode runs at 1000/s.
  const rateFor = (keepAlive: boolean) => (keepAlive ? 2000 : 1000);
  const restarts = options.quick ? 2 : 50;
  const steadyMs = options.quick ? 1000 : 5000;
  const gapMs = 300;
  const modes = options.quick ? [true] : [true, false];
  const results: ScenarioResult[] = [];
  const pm2 = await Pm2.start();
  try {
    for (const keepAlive of modes) {
      const plot = keepAlive ? 5 : 0;
      const scenarios: Array<[string, () => Promise<Contender>, number]> = [
        ['overseer', () => startOverseer(), plot],
        ['overseer, warmed child', async () => ({ ...(await startOverseer({ env: { BENCH_WARMUP: '1000' } })), name: 'overseer, app warms up before listen' }), 0],
        ['pm2 ×1', () => startPm2(pm2, 1), plot],
        ['pm2 ×2', () => startPm2(pm2, 2), 0],
        ['stop-then-start', () => startStopStart(), plot],
        // The behaviour before config.drainSpread: every keep-alive connection told to close at once.
        ['overseer, drainSpread 0', async () => ({ ...(await startOverseer({ options: { drainSpread: 0 } })), name: 'overseer, drainSpread 0 (closes at once)' }), 0],
        ['bare kill+restart', () => startBare(), plot],
        ['boot-only control', async () => {
          const target = await startOverseer();
          return bootOnlyControl(target, `${target.dir}/app.mjs`);
        }, 0],
      ];
      // The smoke run (--quick) keeps the four main contenders.
      const chosen = options.quick ? scenarios.filter(([label]) => ['overseer', 'pm2 ×1', 'stop-then-start', 'bare kill+restart'].includes(label)) : scenarios;
      for (const [label, start, plotRestarts] of chosen) {
        log(`handoffs: ${label}, keep-alive ${keepAlive ? 'on' : 'off'}, ${restarts} restarts at ${rateFor(keepAlive)} rps`);
        results.push(await runScenario({ start, keepAlive, rate: rateFor(keepAlive), restarts, steadyMs, gapMs, plotRestarts }));
      }
    }
  } finally {
    await pm2.close();
  }
  const markdown = [
    `### Restarts under a constant load, 2000 req/s with keep-alive, 1000 req/s without (${restarts} restarts each, ${gapMs} ms apart, after ${steadyMs / 1000} s steady)`,
    '',
    handoffTables(results),
  ].join('\n');
  return { name: 'handoff', markdown, data: { rates: { keepAlive: rateFor(true), noKeepAlive: rateFor(false) }, restarts, steadyMs, gapMs, results } };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('handoff', handoffSection);

