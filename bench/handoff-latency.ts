/**
 * Section handoff-latency: overseer's handoff against the floor a 2-core machine sets, in one run.
 *
 * 1. Open loop (src/check/load.ts), keep-alive on and off: the boot-only control (a process boots
 *    the bundle beside the serving child, no handoff), overseer with its default drain spread, and
 *    overseer with `drainSpread: 0` (every keep-alive connection told to close at once: the
 *    behaviour before the spread). Targets: handoff-window p99 ≤ 1.2× the control's, window max
 *    within 2× of the control's, zero failed.
 * 2. Closed loop at scale (wrk, when installed): 500 keep-alive connections for 12 s with no
 *    handoff, then with five; target: mean latency with five ≤ 1.5× with none.
 *
 * `node --import tsx bench/handoff-latency.ts [--quick] [--restarts=N]`
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { bootOnlyControl, handoffTables, runScenario, type ScenarioResult } from './handoff.ts';
import { now, sleep } from './lib/clock.ts';
import { startOverseer, type Contender } from './lib/contenders.ts';
import { log, runStandalone, type SectionOptions, type SectionResult } from './lib/section.ts';
import { loadAverage, sampleMachineCpu } from './lib/procs.ts';
import { ms, table, totalFailures } from './lib/stats.ts';

const run = promisify(execFile);

const named = async (name: string, options: Record<string, unknown>) => ({ ...(await startOverseer({ options })), name });

interface WrkResult {
  readonly contender: string;
  readonly handoffs: number;
  readonly requests: number;
  readonly meanMs: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly errors: number;
  readonly errorText: string;
  readonly machineBusy: number;
}

/** wrk's latency figure ("1.23ms", "456.00us", "1.20s") in ms. */
function wrkMs(text: string | undefined): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text ?? '');
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 'ms' ? value : match[2] === 's' ? value * 1000 : value * 60_000;
}

async function hasWrk(): Promise<boolean> {
  try {
    await run('wrk', ['--version']);
    return true;
  } catch (error) {
    // wrk --version prints its banner and exits 1.
    return (error as { code?: unknown }).code === 1;
  }
}

/** 500 keep-alive connections, closed loop, `seconds` long; `handoffs` SIGUSR2s spread evenly inside it. */
async function wrkScenario(name: string, options: Record<string, unknown>, handoffs: number, seconds: number, connections: number): Promise<WrkResult> {
  const contender = await named(name, options);
  const cpu = sampleMachineCpu(100);
  const from = now();
  try {
    const running = run('wrk', ['-t2', `-c${connections}`, `-d${seconds}s`, '--timeout', '3s', '--latency', `http://127.0.0.1:${contender.port}/`], { maxBuffer: 1 << 20 });
    for (let index = 1; index <= handoffs; index++) {
      await sleep(Math.max(0, from + (index * seconds * 1000) / (handoffs + 1) - now()));
      await contender.restart!();
    }
    const { stdout } = await running;
    const latency = /Latency\s+(\S+)\s+(\S+)\s+(\S+)/.exec(stdout);
    const p99 = /\s99%\s+(\S+)/.exec(stdout);
    const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? Number.NaN);
    const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
    const errors = (socket ? socket.slice(1).reduce((sum, value) => sum + Number(value), 0) : 0) + non2xx;
    return {
      contender: name,
      handoffs,
      requests,
      meanMs: wrkMs(latency?.[1]),
      p99Ms: wrkMs(p99?.[1]),
      maxMs: wrkMs(latency?.[3]),
      errors,
      errorText: socket ? `connect ${socket[1]}, read ${socket[2]}, write ${socket[3]}, timeout ${socket[4]}, non-2xx ${non2xx}` : `non-2xx ${non2xx}`,
      machineBusy: cpu.busyShare(from, now()),
    };
  } finally {
    cpu.stop();
    await contender.stop();
  }
}

const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : '–');

export async function handoffLatencySection(options: SectionOptions): Promise<SectionResult> {
  const restartsArg = process.argv.find((arg) => arg.startsWith('--restarts='));
  const restarts = restartsArg ? Number(restartsArg.slice('--restarts='.length)) : options.quick ? 5 : 30;
  const steadyMs = options.quick ? 1000 : 3000;
  const gapMs = 300;
  const loadBefore = loadAverage();
  const results: ScenarioResult[] = [];
  const contenders: Array<[string, () => Promise<Contender>]> = [
    ['overseer, boot-only control', async () => {
      const target = await startOverseer();
      return bootOnlyControl(target, `${target.dir}/app.mjs`);
    }],
    ['overseer (drainSpread auto)', () => named('overseer (drainSpread auto)', {})],
    ['overseer, drainSpread 0 (closes at once: before)', () => named('overseer, drainSpread 0 (closes at once: before)', { drainSpread: 0 })],
  ];
  for (const keepAlive of [true, false]) {
    const rate = keepAlive ? 2000 : 1000;
    for (const [label, start] of contenders) {
      log(`handoff-latency: ${label}, keep-alive ${keepAlive ? 'on' : 'off'}, ${restarts} restarts at ${rate} rps`);
      results.push(await runScenario({ start, keepAlive, rate, restarts, steadyMs, gapMs, plotRestarts: 0 }));
    }
  }
  const targetRows = [true, false].flatMap((keepAlive) => {
    const of = (name: string) => results.find((result) => result.keepAlive === keepAlive && result.contender.startsWith(name));
    const control = of('overseer, boot-only');
    return ['overseer (drainSpread auto)', 'overseer, drainSpread 0'].map((name) => {
      const result = of(name);
      if (!result || !control) return [name, keepAlive ? 'on' : 'off', '–', '–', '–', '–', '–', '–'];
      return [
        result.contender, keepAlive ? 'on' : 'off',
        ms(result.windows.p99), ms(control.windows.p99), ratio(result.windows.p99, control.windows.p99),
        `${ms(result.windows.max)} / ${ms(control.windows.max)}`, ratio(result.windows.max, control.windows.max),
        String(totalFailures(result.total)),
      ];
    });
  });
  const targets = table(
    ['contender', 'keep-alive', 'window p99 ms', 'control window p99 ms', 'p99 ÷ control (target ≤ 1.2×)', 'window max ms / control', 'max ÷ control (target ≤ 2×)', 'failed'],
    targetRows,
  );

  const wrk: WrkResult[] = [];
  const seconds = options.quick ? 4 : 12;
  const connections = 500;
  if (await hasWrk()) {
    for (const [name, config] of [['overseer (drainSpread auto)', {}], ['overseer, drainSpread 0 (before)', { drainSpread: 0 }]] as const) {
      for (const handoffs of [0, 5]) {
        log(`handoff-latency: wrk ${connections} connections ${seconds} s, ${name}, ${handoffs} handoffs`);
        wrk.push(await wrkScenario(name, config, handoffs, seconds, connections));
      }
    }
  } else {
    log('handoff-latency: wrk is not installed; the 500-connection scenario is skipped (apt-get install wrk)');
  }
  const wrkRows = wrk.map((result) => {
    const none = wrk.find((other) => other.contender === result.contender && other.handoffs === 0);
    return [
      result.contender, String(result.handoffs), String(result.requests), ms(result.meanMs), ms(result.p99Ms), ms(result.maxMs),
      result.handoffs === 0 ? '1.00×' : ratio(result.meanMs, none?.meanMs ?? Number.NaN), `${result.errors} (${result.errorText})`, `${Math.round(result.machineBusy * 100)}%`,
    ];
  });
  const wrkTable = wrk.length === 0 ? '(wrk not installed: skipped)' : table(
    ['contender', 'handoffs', 'requests', 'mean ms', 'p99 ms', 'max ms', 'mean ÷ no handoff (target ≤ 1.5×)', 'errors', 'machine CPU busy'],
    wrkRows,
  );
  const markdown = [
    `### Handoff latency against the boot-only control (${restarts} restarts each, ${gapMs} ms apart, after ${steadyMs / 1000} s steady; 2000 req/s with keep-alive, 1000 without)`,
    '',
    `Load average before: ${loadBefore}; after: ${loadAverage()}.`,
    '',
    targets,
    '',
    handoffTables(results),
    '',
    `### ${connections} keep-alive connections, closed loop (wrk -t2 -c${connections} -d${seconds}s), no handoff vs five`,
    '',
    wrkTable,
  ].join('\n');
  return { name: 'handoff-latency', markdown, data: { restarts, steadyMs, gapMs, loadBefore, results, wrk } };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('handoff-latency', handoffLatencySection);
