/**
 * Soak: one master, --handoffs= handoffs (10,000 by default) back to back, bounded by
 * --minutes= (30 by default: it stops early and says so). Every --every= handoffs (100) it
 * reads, after a full GC, the master's anonymous memory and RSS (/proc/<pid>/smaps_rollup), its
 * heap, open fds, the entries of the bundle's directory and new temps naming the master's pid.
 * The target: anonymous memory grows by less than 2 MB from handoff 100 to the end, fds and
 * temp files flat.
 *
 *   node --import tsx bench/soak.ts [--handoffs=10000] [--every=100] [--minutes=30]
 */
import fs from 'node:fs';
import os from 'node:os';
import { sleep } from './lib/clock.ts';
import { startOverseer } from './lib/contenders.ts';
import { loadAverage, openFds } from './lib/procs.ts';
import { log, runStandalone, type SectionResult } from './lib/section.ts';
import { table } from './lib/stats.ts';
import { rollup } from './master-memory.ts';

function argument(name: string, fallback: number): number {
  const raw = process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  return raw === undefined ? fallback : Number(raw);
}

interface Point {
  readonly handoffs: number;
  readonly atSeconds: number;
  readonly rss: number;
  readonly anon: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly fds: number;
  readonly bundleDir: number;
  readonly newTemps: number;
}

/** Entries of the temp dir that name the master's pid (other users' temps land there too). */
const tempsOf = (pid: number) => new Set(fs.readdirSync(os.tmpdir()).filter((name) => name.includes(String(pid))));

export async function soakSection(): Promise<SectionResult> {
  const target = argument('handoffs', 10_000);
  const every = argument('every', 100);
  const deadline = performance.now() + argument('minutes', 30) * 60_000;
  const master = await startOverseer({ execArgv: ['--expose-gc'] });
  const points: Point[] = [];
  const tempsBefore = tempsOf(master.masterPid);
  const started = performance.now();
  let done = 0;
  const read = async (): Promise<Point> => {
    const usage = await master.usage(true);
    const memory = rollup(master.masterPid);
    const temps = [...tempsOf(master.masterPid)].filter((name) => !tempsBefore.has(name));
    return {
      handoffs: done,
      atSeconds: (performance.now() - started) / 1000,
      rss: memory.rss,
      anon: memory.anon,
      heapUsed: usage.memory.heapUsed,
      heapTotal: usage.memory.heapTotal,
      external: usage.memory.external,
      fds: openFds(master.masterPid),
      bundleDir: fs.readdirSync(master.dir).length,
      newTemps: temps.length,
    };
  };
  try {
    await sleep(500);
    points.push(await read());
    while (done < target && performance.now() < deadline) {
      await master.restart!();
      done++;
      if (done % every === 0) {
        const point = await read();
        points.push(point);
        log(`soak: ${done} handoffs, anon ${(point.anon / 1048576).toFixed(2)} MB, rss ${(point.rss / 1048576).toFixed(1)} MB, fds ${point.fds}, load ${loadAverage()}`);
      }
    }
  } finally {
    await master.stop();
  }
  const mb = (bytes: number) => (bytes / 1048576).toFixed(2);
  const from = points.find((point) => point.handoffs >= Math.min(100, done)) ?? points[0]!;
  const last = points.at(-1)!;
  // Least-squares slope of anonymous memory over handoffs from 100 on: bytes per handoff.
  const tail = points.filter((point) => point.handoffs >= from.handoffs);
  const meanX = tail.reduce((sum, point) => sum + point.handoffs, 0) / tail.length;
  const meanY = tail.reduce((sum, point) => sum + point.anon, 0) / tail.length;
  const slope =
    tail.reduce((sum, point) => sum + (point.handoffs - meanX) * (point.anon - meanY), 0) /
    Math.max(1, tail.reduce((sum, point) => sum + (point.handoffs - meanX) ** 2, 0));
  const shown = points.filter((point, index) => index === 0 || point.handoffs === from.handoffs || point.handoffs % Math.max(every, Math.ceil(done / 10 / every) * every) === 0 || point === last);
  const markdown = [
    `### Soak: ${done} handoffs${done < target ? ` (of ${target}: stopped at the time bound)` : ''} in ${(last.atSeconds).toFixed(0)} s, readings after a full GC`,
    '',
    table(
      ['handoffs', 'anonymous MB', 'RSS MB', 'heap used / total MB', 'external MB', 'fds', 'bundle dir entries', 'new temps naming the master pid'],
      shown.map((point) => [String(point.handoffs), mb(point.anon), mb(point.rss), `${mb(point.heapUsed)} / ${mb(point.heapTotal)}`, mb(point.external), String(point.fds), String(point.bundleDir), String(point.newTemps)]),
    ),
    '',
    `Anonymous memory from handoff ${from.handoffs} to ${last.handoffs}: ${last.anon >= from.anon ? '+' : ''}${mb(last.anon - from.anon)} MB (target < 2 MB); ` +
      `least-squares slope ${(slope / 1024).toFixed(3)} KB per handoff (${((slope * 1000) / 1048576).toFixed(2)} MB per 1,000). ` +
      `fds ${points[0]!.fds} → ${last.fds}; bundle dir ${points[0]!.bundleDir} → ${last.bundleDir} entries; new temps naming the master's pid ${last.newTemps}.`,
  ].join('\n');
  return { name: 'soak', markdown, data: { target, done, every, points, slopeBytesPerHandoff: slope } };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('soak', soakSection);
