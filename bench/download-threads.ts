/**
 * Where the master's CPU goes while it downloads a release: per thread, from /proc/<pid>/task,
 * the main thread (socket reads, HTTP parsing, hashing, the JS between them) apart from the
 * others (libuv's pool writing the staged file, V8's helpers), from the release's publication
 * to its last byte, then what follows (fsync, verification) apart. The sha256 sidecar is wrong
 * on purpose: full download, hash and fsync, then refused. CPU time is steadier than wall time
 * on a shared machine; the main thread's is the rate's ceiling (one core).
 * `BENCH_DIST=<dir>` measures another build.
 *
 *   node --import tsx bench/download-threads.ts [--mb=1024] [--rounds=3]
 */
import fs from 'node:fs';
import { startReleaseServer } from '../support/release-server.ts';
import { distDir } from './lib/apps.ts';
import { startDownloadMaster } from './upgrade.ts';
import { clockTicks, loadAverage, memory, resetPeak } from './lib/procs.ts';
import { table } from './lib/stats.ts';

const MiB = 1024 * 1024;

function argument(name: string, fallback: number): number {
  const raw = process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  return raw === undefined ? fallback : Number(raw);
}

type Ticks = Map<string, readonly [user: number, system: number]>;

/** utime and stime of each thread of `pid`, the main thread under 'main'. */
function threadTicks(pid: number): Ticks {
  const ticks: Ticks = new Map();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks.set(tid === String(pid) ? 'main' : tid, [Number(fields[11]), Number(fields[12])]);
    } catch {
      // A pool thread that ended between readdir and read.
    }
  }
  return ticks;
}

/** CPU seconds between two readings: main thread (user, system) and the other threads. */
function spent(from: Ticks, to: Ticks): { mainUser: number; mainSystem: number; others: number } {
  let mainUser = 0;
  let mainSystem = 0;
  let others = 0;
  for (const [thread, [user, system]] of to) {
    const [user0, system0] = from.get(thread) ?? [0, 0];
    if (thread === 'main') {
      mainUser += user - user0;
      mainSystem += system - system0;
    } else others += user - user0 + system - system0;
  }
  return { mainUser: mainUser / clockTicks, mainSystem: mainSystem / clockTicks, others: others / clockTicks };
}

const size = argument('mb', 1024) * MiB;
const rounds = argument('rounds', 3);
const server = await startReleaseServer();
const rows: string[][] = [];
try {
  for (let round = 1; round <= rounds; round++) {
    const route = `/threads-${round}.mjs`;
    const master = await startDownloadMaster(server, route);
    try {
      const rssBefore = memory(master.masterPid).rss;
      resetPeak(master.masterPid);
      const fromIndex = master.events.length;
      const atPublish = threadTicks(master.masterPid);
      server.publishGenerated(route, size, { sha256: false });
      server.publish(`${route}.sha256`, `${'0'.repeat(64)}  big.mjs\n`);
      // Read as soon as the last byte's progress event arrives (events come every 250 ms or so).
      let atLastByte: Ticks | undefined;
      const watch = setInterval(() => {
        const last = master.events.slice(fromIndex).findLast((event) => event.type === 'upgrade-progress');
        if (atLastByte === undefined && last?.type === 'upgrade-progress' && last.received === size) atLastByte = threadTicks(master.masterPid);
      }, 5);
      try {
        await master.waitEvent('upgrade-rejected', undefined, 600_000, fromIndex);
      } finally {
        clearInterval(watch);
      }
      const atEnd = threadTicks(master.masterPid);
      const events = master.events.slice(fromIndex);
      const available = events.find((event) => event.type === 'upgrade-available');
      const last = events.findLast((event) => event.type === 'upgrade-progress' && event.received === size);
      if (available === undefined || last === undefined || atLastByte === undefined) throw new Error('no upgrade-available or last progress event');
      const download = spent(atPublish, atLastByte);
      const after = spent(atLastByte, atEnd);
      const perGiB = 1024 / (size / MiB);
      rows.push([
        String(round),
        `${((size / MiB) / ((last.at - available.at) / 1000)).toFixed(0)} MB/s`,
        `${((download.mainUser + download.mainSystem) * perGiB).toFixed(2)} s (${(download.mainUser * perGiB).toFixed(2)} user + ${(download.mainSystem * perGiB).toFixed(2)} sys)`,
        `${(download.others * perGiB).toFixed(2)} s`,
        `${((after.mainUser + after.mainSystem + after.others) * perGiB).toFixed(2)} s`,
        `+${((memory(master.masterPid).hwm - rssBefore) / MiB).toFixed(1)} MB`,
        loadAverage(),
      ]);
    } finally {
      await master.stop();
      fs.rmSync(master.dir, { recursive: true, force: true });
    }
  }
} finally {
  await server.close();
}
console.log(`\n### Master CPU per GiB while downloading ${size / MiB} MiB, by thread (build ${distDir})\n`);
console.log(
  table(['round', 'rate (first → last byte)', 'main thread, publish → last byte', 'other threads', 'after the last byte (fsync, verify)', 'peak RSS growth', 'load average'], rows),
);
