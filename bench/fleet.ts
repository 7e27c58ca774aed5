/**
 * `node --import tsx bench/fleet.ts [--size=30] [--interval=1000] [--quick]`: a fleet of real
 * masters polling one local HTTP source through a signed manifest. Measures the idle cost per
 * member (requests per poll interval, against the one HEAD the design predicts), then per step
 * (10 % → 50 % → 100 % → pull → expire → replay of an old manifest): how many members took the
 * release against the exact set their buckets give and the binomial spread, how long the step
 * took to settle (also in poll intervals), the requests and bytes the source served, and the
 * failed requests of one member under load throughout (must be 0).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Load } from '../test/helpers/load.ts';
import { runScenario, sawManifest, startFleet } from '../support/fleet.ts';
import { startFleetSource } from '../support/fleet-source.ts';
import { log, runStandalone, type SectionOptions, type SectionResult } from './lib/section.ts';
import { table } from './lib/stats.ts';

const flag = (name: string, fallback: number) => Number(process.argv.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);

export async function fleetSection(options: SectionOptions): Promise<SectionResult> {
  const size = Math.max(30, flag('size', 30));
  const interval = flag('interval', 1000);
  const idleMs = options.quick ? 5_000 : 20_000;
  const source = await startFleetSource('1.0.0', '1.1.0');
  log(`fleet: starting ${size} masters (poll interval ${interval} ms ± 20 %)`);
  const startedAt = Date.now();
  const fleet = await startFleet({ size, manifestUrl: source.manifestUrl, publicKey: source.key.publicKey, firstVersion: '1.0.0', interval });
  try {
    const startMs = Date.now() - startedAt;
    await fleet.until((member) => sawManifest(member, 1), 60_000, 'the first manifest');
    const load = new Load({ port: fleet.members[0]!.port, keepAlive: true, concurrency: 2, maxMs: 30 * 60_000 });
    // Idle: nothing changes; each member should cost one HEAD per interval.
    const before = source.requests();
    await sleep(idleMs);
    const idle = source.requests();
    const idleRequests = idle.count - before.count;
    const perMemberPerInterval = idleRequests / size / (idleMs / interval);
    log(`fleet: idle ${idleRequests} requests in ${idleMs} ms (${perMemberPerInterval.toFixed(2)} per member per interval)`);
    const reports = await runScenario({
      fleet,
      publish: (sequence, offer, publishOptions) => source.publish(sequence, offer, publishOptions),
      replay: (sequence) => source.replay(sequence),
      requests: () => source.requests(),
      newVersion: '1.1.0',
      oldVersion: '1.0.0',
      steps: ['10%', '50%', '100%', 'pull', 'expire', 'replay'],
      timeoutMs: 10 * 60_000,
    });
    const result = await load.stop();
    for (const report of reports) log(`fleet: ${report.step} took ${report.took}, settled in ${report.settleMs} ms`);
    const rows = reports.map((r) => [
      r.step,
      String(r.sequence),
      `${r.took}/${size}`,
      r.expected === undefined ? '-' : String(r.expected),
      r.binomialMean === undefined ? '-' : `${r.binomialMean.toFixed(1)} ± ${r.binomialSd!.toFixed(1)}`,
      r.wrong.length === 0 ? '0' : `${r.wrong.length}: ${r.wrong.join(', ')}`,
      `${(r.settleMs / 1000).toFixed(1)} s`,
      (r.settleMs / interval).toFixed(1),
      String(r.requests),
      (r.requests / size).toFixed(1),
      `${(r.bytesServed / 1024).toFixed(0)} KiB`,
    ]);
    const markdown = [
      `### Fleet: ${size} masters, one HTTP source, poll interval ${interval} ms ± 20 %`,
      '',
      `Started and serving in ${(startMs / 1000).toFixed(1)} s. Idle: ${idleRequests} requests in ${idleMs / 1000} s = ` +
        `${perMemberPerInterval.toFixed(2)} per member per interval (the design: 1 HEAD of the manifest).`,
      '',
      table(['step', 'sequence', 'took', 'by buckets', 'binomial', 'wrong', 'settled', 'in intervals', 'requests', 'per member', 'served'], rows),
      '',
      `Load on one member throughout: ${result.answers.length} answers, ${result.failures.length} failed requests.`,
    ].join('\n');
    return { name: 'fleet', markdown, data: { size, interval, startMs, idleMs, idleRequests, perMemberPerInterval, reports, load: { answers: result.answers.length, failures: result.failures } } };
  } finally {
    await fleet.stop();
    await source.server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('fleet', fleetSection);
