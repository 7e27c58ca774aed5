/**
 * Section 1: steady throughput and latency of the same trivial app, bare `node` vs an overseer
 * child vs Node's cluster module with one worker (SCHED_RR, SCHED_NONE) vs PM2 cluster mode with
 * one instance. Keep-alive on (autocannon) and off (this bench's client, a connection per
 * request). Rounds interleave the contenders so drift on a shared machine hits them all alike.
 */
import os from 'node:os';
import autocannon from 'autocannon';
import { sleep } from './lib/clock.ts';
import { startBare, startCluster, startOverseer, startPm2, type Contender } from './lib/contenders.ts';
import { runLoad } from '../src/check/load.ts';
import { Pm2 } from './lib/pm2.ts';
import { hasTaskset, machineCpu, pin, tryCpuMs, waitForQuiet } from './lib/procs.ts';
import { log, runStandalone, type SectionOptions, type SectionResult } from './lib/section.ts';
import { int, median, ms, percentile, summarize, table, totalFailures } from './lib/stats.ts';

export interface Sample {
  readonly contender: string;
  readonly keepAlive: boolean;
  readonly round: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  /** CPU used by the contender's processes, as a share of one core. */
  readonly serverCpu: number;
  /** The contender's CPU time per answered request, µs: what bounds its throughput, and far less sensitive to other users' load than req/s. */
  readonly cpuPerRequest: number;
  readonly clientCpu: number;
  /** CPU used by everything else on the machine meanwhile (other users' work), in cores. */
  readonly otherCpu: number;
}

const CONNECTIONS = 16;

export async function measure(contender: Contender, keepAlive: boolean, seconds: number): Promise<Omit<Sample, 'contender' | 'keepAlive' | 'round'>> {
  const pids = contender.pids();
  const cpuBefore = pids.map((pid) => tryCpuMs(pid) ?? 0);
  const clientBefore = process.cpuUsage();
  const machineBefore = machineCpu();
  const started = performance.now();
  let result: Omit<Sample, 'contender' | 'keepAlive' | 'round' | 'serverCpu' | 'clientCpu' | 'otherCpu' | 'cpuPerRequest'> & { requests: number };
  if (keepAlive) {
    const answer = await autocannon({ url: `http://127.0.0.1:${contender.port}/`, connections: CONNECTIONS, duration: seconds, pipelining: 1 });
    result = { rps: answer.requests.total / answer.duration, requests: answer.requests.total, p50: answer.latency.p50, p99: answer.latency.p99, errors: answer.errors + answer.timeouts + answer.non2xx };
  } else {
    const records = await runLoad({ port: contender.port, keepAlive: false, concurrency: CONNECTIONS, durationMs: seconds * 1000 }).done;
    const summary = summarize(records);
    result = { rps: summary.ok / ((records.endedAt - records.startedAt) / 1000), requests: summary.ok, p50: summary.p50, p99: summary.p99, errors: totalFailures(summary) };
  }
  const elapsed = performance.now() - started;
  const serverCpuMs = pids.reduce((sum, pid, index) => sum + ((tryCpuMs(pid) ?? cpuBefore[index] ?? 0) - (cpuBefore[index] ?? 0)), 0);
  const serverCpu = serverCpuMs / elapsed;
  const client = process.cpuUsage(clientBefore);
  const clientCpu = (client.user + client.system) / 1000 / elapsed;
  const machineAfter = machineCpu();
  const cores = os.availableParallelism();
  const machineBusy = ((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)) * cores;
  const { requests, ...rest } = result;
  return { ...rest, serverCpu, cpuPerRequest: (serverCpuMs * 1000) / Math.max(1, requests), clientCpu, otherCpu: Math.max(0, machineBusy - serverCpu - clientCpu) };
}

export async function throughputSection(options: SectionOptions): Promise<SectionResult> {
  const rounds = options.quick ? 1 : 6;
  const seconds = options.quick ? 1 : 3;
  const warmupSeconds = options.quick ? 0 : 1;
  const pinning = options.pin && hasTaskset();
  const serverCpus = pinning ? '0' : undefined;
  if (pinning) pin(process.pid, '1');
  const pm2 = await Pm2.start(serverCpus);
  const contenders: Contender[] = [];
  const samples: Sample[] = [];
  const pairs = options.quick ? 1 : 20;
  const pairSeconds = options.quick ? 1 : 2;
  const paired: Array<{ keepAlive: boolean; pair: number; rpsRatio: number; cpuRatio: number; otherCpu: number }> = [];
  try {
    contenders.push(await startBare({ cpus: serverCpus }));
    contenders.push(await startOverseer({ cpus: serverCpus }));
    contenders.push(await startCluster('rr', { cpus: serverCpus }));
    contenders.push(await startCluster('none', { cpus: serverCpus }));
    contenders.push(await startPm2(pm2, 1, { cpus: serverCpus }));
    contenders.push(await startBare({ cpus: serverCpus, script: 'bare-dc.cjs', name: 'bare + request.start subscriber' }));
    for (const keepAlive of [true, false]) {
      for (let round = 0; round < rounds; round++) {
        // Rotate the order each round: no contender always runs first or last.
        const order = contenders.map((_, index) => contenders[(index + round) % contenders.length] as Contender);
        await waitForQuiet();
        for (const contender of order) {
          log(`throughput: ${contender.name}, keep-alive ${keepAlive ? 'on' : 'off'}, round ${round + 1}/${rounds}`);
          if (warmupSeconds > 0) await measure(contender, keepAlive, warmupSeconds);
          const sample = await measure(contender, keepAlive, seconds);
          samples.push({ contender: contender.name, keepAlive, round, ...sample });
          await sleep(200);
        }
      }
    }
    // A finer test of the 2% target: bare and overseer alternate in short back-to-back pairs, so
    // other users' work is as likely to hit either; the ratio is taken within each pair.
    const [bare, overseer] = contenders as [Contender, Contender];
    for (const keepAlive of [true, false]) {
      log(`throughput: ${pairs} bare/overseer pairs, keep-alive ${keepAlive ? 'on' : 'off'}`);
      for (let pair = 0; pair < pairs; pair++) {
        await waitForQuiet();
        const first = pair % 2 === 0 ? bare : overseer;
        const second = first === bare ? overseer : bare;
        const a = await measure(first, keepAlive, pairSeconds);
        const b = await measure(second, keepAlive, pairSeconds);
        const [ofBare, ofOverseer] = first === bare ? [a, b] : [b, a];
        paired.push({ keepAlive, pair, rpsRatio: ofOverseer.rps / ofBare.rps, cpuRatio: ofOverseer.cpuPerRequest / ofBare.cpuPerRequest, otherCpu: (a.otherCpu + b.otherCpu) / 2 });
      }
    }
  } finally {
    for (const contender of contenders) await contender.stop().catch(() => {});
    await pm2.close();
    if (pinning) pin(process.pid, '0,1');
  }

  const rows: string[][] = [];
  for (const keepAlive of [true, false]) {
    const bare = samples.filter((sample) => sample.contender === 'bare node' && sample.keepAlive === keepAlive);
    const bareByRound = new Map(bare.map((sample) => [sample.round, sample.rps]));
    const bareCpuByRound = new Map(bare.map((sample) => [sample.round, sample.cpuPerRequest]));
    for (const contender of contenders) {
      const mine = samples.filter((sample) => sample.contender === contender.name && sample.keepAlive === keepAlive);
      const rps = mine.map((sample) => sample.rps);
      const ratios = mine.map((sample) => sample.rps / (bareByRound.get(sample.round) ?? Number.NaN));
      const cpuRatios = mine.map((sample) => sample.cpuPerRequest / (bareCpuByRound.get(sample.round) ?? Number.NaN));
      rows.push([
        contender.name,
        keepAlive ? 'on' : 'off',
        int(median(rps)),
        `${int(Math.min(...rps))}–${int(Math.max(...rps))}`,
        `${median(ratios).toFixed(3)}× (${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)})`,
        `${median(mine.map((sample) => sample.cpuPerRequest)).toFixed(1)} µs`,
        `${median(cpuRatios).toFixed(3)}× (${Math.min(...cpuRatios).toFixed(3)}–${Math.max(...cpuRatios).toFixed(3)})`,
        ms(median(mine.map((sample) => sample.p50))),
        ms(median(mine.map((sample) => sample.p99))),
        String(mine.reduce((sum, sample) => sum + sample.errors, 0)),
        `${Math.round(median(mine.map((sample) => sample.serverCpu)) * 100)}%`,
        `${Math.round(median(mine.map((sample) => sample.clientCpu)) * 100)}%`,
        `${Math.round(median(mine.map((sample) => sample.otherCpu)) * 100)}%`,
      ]);
    }
  }
  const quartiles = (values: number[]) => {
    const sorted = [...values].sort((x, y) => x - y);
    return `${percentile(sorted, 50).toFixed(3)}× (${percentile(sorted, 25).toFixed(3)}–${percentile(sorted, 75).toFixed(3)})`;
  };
  const pairRows = [true, false].map((keepAlive) => {
    const mine = paired.filter((item) => item.keepAlive === keepAlive);
    const quiet = mine.filter((item) => item.otherCpu < 0.15);
    return [
      keepAlive ? 'on' : 'off',
      String(mine.length),
      quartiles(mine.map((item) => item.rpsRatio)),
      quartiles(mine.map((item) => item.cpuRatio)),
      `${quiet.length}: ${quiet.length ? quartiles(quiet.map((item) => item.rpsRatio)) : '–'} / ${quiet.length ? quartiles(quiet.map((item) => item.cpuRatio)) : '–'}`,
    ];
  });
  const markdown = [
    `### Steady throughput, ${CONNECTIONS} connections, closed loop (${rounds} interleaved rounds of ${seconds} s after ${warmupSeconds} s warm-up each)`,
    '',
    pinning ? 'Servers pinned to CPU 0, the load client to CPU 1 (taskset): a cluster primary or PM2 daemon shares CPU 0 with its worker.' : 'Unpinned: the load client and the servers share both cores.',
    '',
    table(['contender', 'keep-alive', 'req/s median', 'req/s range', 'req/s vs bare, same round (median, range)', 'server CPU per request', 'CPU per request vs bare, same round', 'p50 ms', 'p99 ms', 'errors', 'server CPU', 'client CPU', 'others\' CPU'], rows),
    '',
    `overseer vs bare in ${pairs} back-to-back pairs of ${pairSeconds} s (alternating which goes first; ratio within each pair, median and quartiles):`,
    '',
    table(['keep-alive', 'pairs', 'req/s overseer ÷ bare', 'CPU per request overseer ÷ bare', 'pairs with others\' CPU < 15%: req/s / CPU ratios'], pairRows),
    '',
    "Keep-alive on: autocannon 9; off: this bench's raw-socket client (a new connection per request). Latency here is at saturation (closed loop); autocannon reports whole milliseconds. Server CPU per request is the contender's utime+stime (all its processes: master, primary, daemon, worker) per answered request: the cost that bounds throughput, and much steadier than req/s when other work shares the machine. Other CPU columns are shares of one core over the run; \"others' CPU\" is what the rest of the machine used meanwhile (other users' work), the main source of noise here.",
  ].join('\n');
  return { name: 'throughput', markdown, data: { rounds, seconds, connections: CONNECTIONS, pinned: pinning, samples, paired } };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('throughput', throughputSection);
