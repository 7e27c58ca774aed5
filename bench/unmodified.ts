/**
 * Section: an unmodified app (`apps/bare.cjs`, which calls server.listen(PORT) and knows nothing
 * of overseer) under `overseer run --listen … -- node bare.cjs` (the listen preload), beside the
 * same app bare and under PM2 cluster mode (one instance), in the same run: throughput with
 * keep-alive on and off (ratio to bare, round by round), and failed requests across restarts
 * under a constant load (overseer run: SIGUSR2; PM2: `pm2 reload`; bare: kill and start again).
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { EVENT_LINE_PREFIX } from '../src/protocol.ts';
import { now, sleep } from './lib/clock.ts';
import { startBare, startPm2, type Contender, type Restart } from './lib/contenders.ts';
import { distDir } from './lib/apps.ts';
import { runLoad } from '../src/check/load.ts';
import { Pm2 } from './lib/pm2.ts';
import { benchDir, freePort, spawnTracked, stopChild, trackPid, waitForQuiet, waitGone } from './lib/procs.ts';
import { log, runStandalone, type SectionOptions, type SectionResult } from './lib/section.ts';
import { failureText, int, median, summarize, table, totalFailures, type LatencySummary } from './lib/stats.ts';
import { measure } from './throughput.ts';

/** `overseer run --listen 127.0.0.1:PORT -- node apps/bare.cjs`, followed through its --events lines; restart = SIGUSR2. */
async function startOverseerRun(): Promise<Contender> {
  const port = await freePort();
  const cli = path.join(distDir, 'src/cli/main.js');
  const master: ChildProcess = spawnTracked(process.execPath, [cli, 'run', '--events', '--listen', `127.0.0.1:${port}`, '--env', `PORT=${port}`, '--', process.execPath, path.join(benchDir, 'apps/bare.cjs')], {
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const events: Array<Record<string, unknown> & { type: string; at: number }> = [];
  const waiters = new Set<() => void>();
  let buffered = '';
  master.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith(EVENT_LINE_PREFIX)) continue;
      const event = { ...(JSON.parse(line.slice(EVENT_LINE_PREFIX.length)) as { type: string }), at: now() };
      if (event.type === 'child-forked') trackPid((event as unknown as { pid: number }).pid);
      events.push(event);
    }
    for (const waiter of [...waiters]) waiter();
  });
  const waitFor = (match: (event: (typeof events)[number]) => boolean, what: string, from = 0) => new Promise<(typeof events)[number]>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`overseer run: no ${what} within 30 s`)), 30_000);
    const check = () => {
      const found = events.slice(from).find(match);
      if (found) done(undefined, found);
      else if (master.exitCode !== null) done(new Error(`overseer run exited before ${what}`));
    };
    const done = (error?: Error, found?: (typeof events)[number]) => {
      clearTimeout(timer);
      waiters.delete(check);
      if (error) reject(error);
      else resolve(found as (typeof events)[number]);
    };
    waiters.add(check);
    check();
  });
  let serving = (await waitFor((event) => event.type === 'child-ready', 'child-ready')).pid as number;
  const alive = () => {
    const set = new Set<number>();
    for (const event of events) {
      if (event.type === 'child-forked') set.add(event.pid as number);
      if (event.type === 'child-exited') set.delete(event.pid as number);
    }
    return [...set];
  };
  return {
    name: 'overseer run, unmodified app',
    port,
    pids: () => [master.pid ?? -1, ...alive()],
    servingPid: () => serving,
    async restart(): Promise<Restart> {
      const from = now();
      const index = events.length;
      master.kill('SIGUSR2');
      const completed = await waitFor((event) => event.type === 'handoff-completed', 'handoff-completed', index);
      serving = completed.to as number;
      const timings = completed.timings as { readyMs: number; drainMs: number };
      return { from, to: completed.at, phases: {}, facts: { readyMs: timings.readyMs, drainMs: timings.drainMs } };
    },
    async stop() {
      const pids = alive();
      await stopChild(master, 'SIGTERM', 10_000);
      await waitGone(pids);
    },
  };
}

interface Throughput { readonly contender: string; readonly keepAlive: boolean; readonly round: number; readonly rps: number; readonly cpuPerRequest: number }
interface Restarts { readonly contender: string; readonly keepAlive: boolean; readonly restarts: number; readonly total: LatencySummary }

export async function unmodifiedSection(options: SectionOptions): Promise<SectionResult> {
  const rounds = options.quick ? 1 : 4;
  const seconds = options.quick ? 1 : 3;
  const restarts = options.quick ? 3 : 10;
  const pm2 = await Pm2.start();
  const contenders: Contender[] = [];
  const samples: Throughput[] = [];
  const handoffs: Restarts[] = [];
  try {
    contenders.push(await startBare());
    contenders.push(await startOverseerRun());
    contenders.push(await startPm2(pm2, 1));
    for (const keepAlive of [true, false]) {
      for (let round = 0; round < rounds; round++) {
        await waitForQuiet();
        for (const [index] of contenders.entries()) {
          const contender = contenders[(index + round) % contenders.length] as Contender;
          log(`unmodified: ${contender.name}, keep-alive ${keepAlive ? 'on' : 'off'}, round ${round + 1}/${rounds}`);
          if (!options.quick) await measure(contender, keepAlive, 1);
          const sample = await measure(contender, keepAlive, seconds);
          samples.push({ contender: contender.name, keepAlive, round, rps: sample.rps, cpuPerRequest: sample.cpuPerRequest });
        }
      }
    }
    // Restarts under a constant load: what a deploy of this app costs its clients.
    for (const keepAlive of [true, false]) {
      for (const contender of contenders) {
        await waitForQuiet();
        log(`unmodified: ${restarts} restarts of ${contender.name}, keep-alive ${keepAlive ? 'on' : 'off'}`);
        const load = runLoad({ port: contender.port, keepAlive, rate: keepAlive ? 1000 : 500, durationMs: 10 * 60_000 });
        await sleep(500);
        for (let round = 0; round < restarts; round++) {
          await contender.restart?.();
          await sleep(300);
        }
        load.stop();
        handoffs.push({ contender: contender.name, keepAlive, restarts, total: summarize(await load.done) });
      }
    }
  } finally {
    for (const contender of contenders) await contender.stop().catch(() => {});
    await pm2.close();
  }
  const rows = contenders.flatMap((contender) => [true, false].map((keepAlive) => {
    const bare = new Map(samples.filter((sample) => sample.contender === 'bare node' && sample.keepAlive === keepAlive).map((sample) => [sample.round, sample]));
    const mine = samples.filter((sample) => sample.contender === contender.name && sample.keepAlive === keepAlive);
    const restart = handoffs.find((item) => item.contender === contender.name && item.keepAlive === keepAlive);
    return [
      contender.name,
      keepAlive ? 'on' : 'off',
      int(median(mine.map((sample) => sample.rps))),
      `${median(mine.map((sample) => sample.rps / (bare.get(sample.round)?.rps ?? Number.NaN))).toFixed(2)}×`,
      `${median(mine.map((sample) => sample.cpuPerRequest / (bare.get(sample.round)?.cpuPerRequest ?? Number.NaN))).toFixed(2)}×`,
      restart ? `${int(restart.total.requests)} / ${restart.restarts}` : '–',
      restart ? `${totalFailures(restart.total)} (${failureText(restart.total.failures)})` : '–',
    ];
  }));
  const markdown = [
    '### Unmodified app: `overseer run -- node bare.cjs` vs bare vs PM2 cluster ×1',
    '',
    `The same app (\`bench/apps/bare.cjs\`, \`server.listen(PORT)\`), unchanged. Throughput: median of ${rounds} rounds of ${seconds} s, 16 connections, ratio to bare in the same round. Restarts: ${restarts} under an open-loop load (1000 req/s keep-alive, 500 req/s without); bare = kill and start again, overseer run = SIGUSR2, PM2 = \`pm2 reload\`.`,
    '',
    table(['contender', 'keep-alive', 'req/s', '× bare req/s', '× bare CPU/req', 'requests / restarts', 'failed (refused / reset / timeout / status)'], rows),
  ].join('\n');
  return { name: 'unmodified', markdown, data: { samples, handoffs } };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('unmodified', unmodifiedSection);
