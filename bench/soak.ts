/**
 * Soak: one master, --handoffs= handoffs (10,000 by default) back to back, bounded by
 * --minutes= (30 by default: it stops early and says so). Every --every= handoffs (100) it
 * reads, after a full GC, the master's anonymous memory and RSS (/proc/<pid>/smaps_rollup), its
 * heap, open fds, the entries of the bundle's directory and new temps naming the master's pid.
 * The target: anonymous memory grows by less than 2 MB from handoff 100 to the end, fds and
 * temp files flat. Each reading also splits anonymous memory by mapping (/proc/<pid>/smaps, see
 * anonByKind) to show which one carries a slope. A build whose master collects when it goes quiet
 * (src/core/idle-gc.ts) is read after that collection, as a master that hands off now and then
 * would be: the soak waits for it (at most one per MIN_GAP_MS, 30 s) before each reading.
 *
 *   node --import tsx bench/soak.ts [--handoffs=10000] [--every=100] [--minutes=30]
 */
import fs from 'node:fs';
import os from 'node:os';
import { sleep } from './lib/clock.ts';
import { startOverseer } from './lib/contenders.ts';
import { loadAverage, openFds } from './lib/procs.ts';
import { log, runStandalone, type SectionResult } from './lib/section.ts';
import { median, table } from './lib/stats.ts';
import { rollup } from './master-memory.ts';

function argument(name: string, fallback: number): number {
  const raw = process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  return raw === undefined ? fallback : Number(raw);
}

/** Anonymous memory by the kind of mapping it sits in, bytes. */
export interface AnonByKind {
  /** `[heap]`: glibc malloc's main arena (the main thread's malloc). */
  readonly mainArena: number;
  /** Unnamed mappings that start 64 MB-aligned: glibc's per-thread malloc arenas. */
  readonly threadArenas: number;
  /** Unnamed mappings 256 KB-aligned and a multiple of 256 KB long: V8's heap pages (its page size). */
  readonly v8: number;
  /** The rest: thread stacks, code space, copy-on-write pages of the binary and libraries. */
  readonly other: number;
}

/**
 * Splits Anonymous of /proc/<pid>/smaps by mapping. The kinds are read from addresses, not
 * asked of the process: a V8 page and a thread's arena are told apart by their alignment
 * (V8 allocates 256 KB pages; glibc reserves each thread arena 64 MB-aligned, HEAP_MAX_SIZE).
 */
export function anonByKind(pid: number): AnonByKind {
  const totals = { mainArena: 0, threadArenas: 0, v8: 0, other: 0 };
  let kind: keyof typeof totals = 'other';
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const start = BigInt(`0x${header[1]}`);
      const size = BigInt(`0x${header[2]}`) - start;
      const name = header[3]!;
      const page = 256n * 1024n;
      if (name === '[heap]') kind = 'mainArena';
      else if (name !== '') kind = 'other';
      else if (start % (64n * 1024n * 1024n) === 0n) kind = 'threadArenas';
      else if (start % page === 0n && size % page === 0n) kind = 'v8';
      else kind = 'other';
      continue;
    }
    const anonymous = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (anonymous) totals[kind] += Number(anonymous[1]) * 1024;
  }
  return totals;
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
  readonly byKind: AnonByKind;
  /** The idle collection read after: its main-thread ms, or undefined (none in this build, or none came in time). */
  readonly idleCollectionMs: number | undefined;
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
  let collects = false;
  const read = async (wait = collects): Promise<Point> => {
    const collection = wait ? await master.waitIdleCollection(master.idleCollections.length, 70_000) : master.idleCollections.at(-1);
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
      byKind: anonByKind(master.masterPid),
      idleCollectionMs: collection?.durationMs,
    };
  };
  try {
    await sleep(500);
    // Right after the start (a master does not collect for its start alone).
    points.push(await read(false));
    // Does this build collect when idle? The quiet after the first handoff tells.
    await master.restart!();
    done++;
    collects = (await master.waitIdleCollection(0, 5_000)) !== undefined;
    log(`soak: this build ${collects ? 'collects when idle: each reading waits for that collection' : 'has no idle collection'}`);
    while (done < target && performance.now() < deadline) {
      await master.restart!();
      done++;
      if (done % every === 0) {
        const point = await read();
        points.push(point);
        const kinds = point.byKind;
        log(`soak: ${done} handoffs, anon ${(point.anon / 1048576).toFixed(2)} MB (main arena ${(kinds.mainArena / 1048576).toFixed(2)}, thread arenas ${(kinds.threadArenas / 1048576).toFixed(2)}, v8 ${(kinds.v8 / 1048576).toFixed(2)}, other ${(kinds.other / 1048576).toFixed(2)}), rss ${(point.rss / 1048576).toFixed(1)} MB, fds ${point.fds}, idle collection ${point.idleCollectionMs?.toFixed(1) ?? '–'} ms, load ${loadAverage()}`);
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
  const slopeOf = (value: (point: Point) => number) => {
    const mean = tail.reduce((sum, point) => sum + value(point), 0) / tail.length;
    return tail.reduce((sum, point) => sum + (point.handoffs - meanX) * (value(point) - mean), 0) /
      Math.max(1, tail.reduce((sum, point) => sum + (point.handoffs - meanX) ** 2, 0));
  };
  const slope = slopeOf((point) => point.anon);
  const kindSlopes = Object.fromEntries((['mainArena', 'threadArenas', 'v8', 'other'] as const).map((kind) => [kind, slopeOf((point) => point.byKind[kind])]));
  const shown = points.filter((point, index) => index === 0 || point.handoffs === from.handoffs || point.handoffs % Math.max(every, Math.ceil(done / 10 / every) * every) === 0 || point === last);
  const markdown = [
    `### Soak: ${done} handoffs${done < target ? ` (of ${target}: stopped at the time bound)` : ''} in ${(last.atSeconds).toFixed(0)} s, readings after a full GC`,
    '',
    table(
      ['handoffs', 'anonymous MB', 'main arena / thread arenas / V8 pages / other MB', 'RSS MB', 'heap used / total MB', 'external MB', 'fds', 'bundle dir entries', 'new temps naming the master pid'],
      shown.map((point) => [String(point.handoffs), mb(point.anon), `${mb(point.byKind.mainArena)} / ${mb(point.byKind.threadArenas)} / ${mb(point.byKind.v8)} / ${mb(point.byKind.other)}`, mb(point.rss), `${mb(point.heapUsed)} / ${mb(point.heapTotal)}`, mb(point.external), String(point.fds), String(point.bundleDir), String(point.newTemps)]),
    ),
    '',
    `Anonymous memory from handoff ${from.handoffs} to ${last.handoffs}: ${last.anon >= from.anon ? '+' : ''}${mb(last.anon - from.anon)} MB (target < 2 MB); ` +
      `least-squares slope ${(slope / 1024).toFixed(3)} KB per handoff (${((slope * 1000) / 1048576).toFixed(2)} MB per 1,000). ` +
      `fds ${points[0]!.fds} → ${last.fds}; bundle dir ${points[0]!.bundleDir} → ${last.bundleDir} entries; new temps naming the master's pid ${last.newTemps}.`,
    '',
    `By mapping, from handoff ${from.handoffs} to ${last.handoffs} (least-squares slope, KB per handoff): ` +
      (['mainArena', 'threadArenas', 'v8', 'other'] as const).map((kind) => `${kind} ${last.byKind[kind] >= from.byKind[kind] ? '+' : ''}${mb(last.byKind[kind] - from.byKind[kind])} MB (${(kindSlopes[kind]! / 1024).toFixed(3)})`).join(', ') + '. ' +
      (collects ? `Read after the master's idle collection (src/core/idle-gc.ts): median ${median(points.flatMap((point) => (point.idleCollectionMs === undefined ? [] : [point.idleCollectionMs]))).toFixed(1)} ms each.` : 'This build has no idle collection.'),
  ].join('\n');
  return { name: 'soak', markdown, data: { target, done, every, points, slopeBytesPerHandoff: slope, kindSlopes, collects } };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('soak', soakSection);
