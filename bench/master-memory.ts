/**
 * Section: what an idle master costs over an idle `node -e 'setInterval(()=>{},1e3)'` measured in
 * the same round, with no fetcher and with each fetcher polling a local source. Each round starts
 * every contender afresh and reads /proc/<pid>/smaps_rollup after it has settled; rounds repeat
 * so the spread shows. A second baseline loads what the bench app itself imports (node:http,
 * node:module), so overseer's own share is told apart from the app's.
 *
 * Each master is read twice: after its polls (the first reading, as before), and after it went
 * quiet and gave memory back (src/core/idle-gc.ts), the state a master polling every few minutes
 * spends its time in. A master polling every 200 ms collects at most once per MIN_GAP_MS (30 s),
 * so the second reading waits for the next collection (up to 40 s); a build without idle
 * collections is read after the same wait, still polling.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startGitHubApi } from '../support/github-api.ts';
import { startReleaseServer } from '../support/release-server.ts';
import { S3_CREDENTIALS, startS3 } from '../support/s3.ts';
import { writeOverseerApp } from './lib/apps.ts';
import { sleep } from './lib/clock.ts';
import { startOverseer } from './lib/contenders.ts';
import { spawnTracked, stopChild } from './lib/procs.ts';
import { log, runStandalone, type SectionOptions, type SectionResult } from './lib/section.ts';
import { median, table } from './lib/stats.ts';

const node = process.execPath;

export interface Rollup {
  readonly rss: number;
  readonly anon: number;
  readonly file: number;
}

/** Rss, Anonymous and the rest (file-backed, mostly the node binary's pages) from smaps_rollup, bytes. */
export function rollup(pid: number): Rollup {
  const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) * 1024;
  const rss = field('Rss');
  const anon = field('Anonymous');
  return { rss, anon, file: rss - anon };
}

/** Masters read after their idle collection (or the same wait without one) are under this kind's name + QUIET. */
const QUIET = ' (quiet)';

const KINDS = ['idle node', 'idle node + app imports', 'master, no fetcher', 'master + http', 'master + file', 'master + s3', 'master + github'] as const;
type Kind = (typeof KINDS)[number];

interface Reading extends Rollup {
  readonly heapUsed?: number;
  readonly heapTotal?: number;
  readonly external?: number;
  /** The reading after the idle collection: its ms, or undefined (none came: a build without them). */
  readonly collectionMs?: number | undefined;
  readonly collectionCpuMs?: number | undefined;
}

async function idleNode(withImports: boolean, settleMs: number): Promise<Reading> {
  const code = withImports
    ? "await import('node:http'); await import('node:module'); setInterval(() => {}, 1e3); process.send?.('up')"
    : "setInterval(() => {}, 1e3); process.send?.('up')";
  const child = spawnTracked(node, ['--input-type=module', '-e', code], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, NODE_OPTIONS: '' } });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (exitCode) => reject(new Error(`idle node exited (${exitCode})`)));
    });
    // The IPC channel is what a forked master has too; drop it so the baseline is the plain command.
    child.disconnect();
    await sleep(settleMs);
    return rollup(child.pid ?? -1);
  } finally {
    await stopChild(child);
  }
}

/** `--kinds=http,file` measures only those masters (the idle baselines always run); `--polls=N` reads after N more polls. */
function kindsToRun(): readonly Kind[] {
  const arg = process.argv.find((value) => value.startsWith('--kinds='))?.slice('--kinds='.length);
  if (arg === undefined) return KINDS;
  const wanted = arg.split(',');
  return KINDS.filter((kind) => kind.startsWith('idle') || wanted.some((name) => kind === `master + ${name}` || (name === 'none' && kind === 'master, no fetcher')));
}

export async function masterMemorySection(options: SectionOptions): Promise<SectionResult> {
  const rounds = options.quick ? 1 : 3;
  const pollsArg = process.argv.find((value) => value.startsWith('--polls='))?.slice('--polls='.length);
  const polls = pollsArg !== undefined ? Number(pollsArg) : options.quick ? 3 : 20;
  const kinds = kindsToRun();
  const interval = 200;
  const settleMs = options.quick ? 500 : 2000;
  const readings: Record<Kind, Reading[]> = Object.fromEntries(KINDS.map((kind) => [kind, []])) as unknown as Record<Kind, Reading[]>;
  const quiet: Record<Kind, Reading[]> = Object.fromEntries(KINDS.map((kind) => [kind, []])) as unknown as Record<Kind, Reading[]>;
  const releaseServer = await startReleaseServer();
  const s3 = await startS3();
  const github = await startGitHubApi();
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const kind of kinds) {
        log(`master memory: round ${round}/${rounds}, ${kind}`);
        if (kind === 'idle node' || kind === 'idle node + app imports') {
          readings[kind].push(await idleNode(kind !== 'idle node', settleMs + (kind === 'idle node' ? 0 : 0)));
          continue;
        }
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-bench-'));
        const bundle = writeOverseerApp(dir, '1.0.0');
        const bytes = fs.readFileSync(bundle);
        let fetcher: { kind: string; options: Record<string, unknown> } | undefined;
        if (kind === 'master + http') {
          releaseServer.publish('/app.mjs', bytes);
          fetcher = { kind: 'http', options: { url: releaseServer.url('/app.mjs'), interval } };
        } else if (kind === 'master + file') {
          const release = path.join(dir, 'release.mjs');
          fs.writeFileSync(release, bytes);
          fetcher = { kind: 'file', options: { path: release, interval } };
        } else if (kind === 'master + s3') {
          await s3.put('app.mjs', bytes);
          fetcher = { kind: 's3', options: { bucket: s3.bucket, key: 'app.mjs', endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDENTIALS, interval } };
        } else if (kind === 'master + github') {
          github.publishRelease({ tag: 'v1.0.0', assets: [{ name: 'app.mjs', body: bytes }] });
          fetcher = { kind: 'github', options: { owner: github.owner, repo: github.repo, baseUrl: github.baseUrl, asset: 'app.mjs', interval } };
        }
        const master = await startOverseer({ bundle, ...(fetcher ? { fetcher, options: { minFetchInterval: interval } } : {}) });
        try {
          if (fetcher) {
            await master.waitEvent('upgrade-skipped', undefined, 30_000);
            await sleep(interval * polls);
          } else {
            await sleep(settleMs);
          }
          const read = async (collection?: { durationMs: number; cpuMs: number }): Promise<Reading> => {
            const usage = await master.usage(false);
            return {
              ...rollup(master.masterPid),
              heapUsed: usage.memory.heapUsed,
              heapTotal: usage.memory.heapTotal,
              external: usage.memory.external,
              collectionMs: collection?.durationMs,
              collectionCpuMs: collection?.cpuMs,
            };
          };
          readings[kind].push(await read());
          // A polling master: its next collection (it keeps polling). Without a fetcher the
          // one after its start, which has come by now if the build has them.
          const collection = fetcher
            ? await master.waitIdleCollection(master.idleCollections.length, options.quick ? 2_000 : 40_000)
            : await master.waitIdleCollection(0, 1_000);
          quiet[kind].push(await read(collection));
        } finally {
          await master.stop();
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await releaseServer.close();
    await s3.close();
    await github.close();
  }

  const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  const signed = (bytes: number) => `${bytes >= 0 ? '+' : ''}${mb(bytes)}`;
  const spread = (values: number[]) => (values.length > 1 ? ` (${signed(Math.min(...values))}…${signed(Math.max(...values))})` : '');
  const base = readings['idle node'];
  // overseer's own share: over the node that imports what the bench app imports (on Node 22 and
  // 24 that import alone costs 10-14 MB, see the note under the table).
  const appBase = readings['idle node + app imports'];
  const row = (kind: Kind, source: Record<Kind, Reading[]>, label: string) => {
    const list = source[kind];
    const minus = (field: keyof Rollup) => list.map((reading, index) => reading[field] - (base[index]?.[field] ?? Number.NaN));
    const rss = minus('rss');
    const heap = list.map((reading) => reading.heapUsed ?? Number.NaN);
    const heapTotal = list.map((reading) => reading.heapTotal ?? Number.NaN);
    const collected = list.flatMap((reading) => (reading.collectionMs === undefined ? [] : [reading.collectionMs]));
    const collectedCpu = list.flatMap((reading) => (reading.collectionCpuMs === undefined ? [] : [reading.collectionCpuMs]));
    return [
      label,
      mb(median(list.map((reading) => reading.rss))),
      kind === 'idle node' ? '–' : `${signed(median(rss))}${spread(rss)}`,
      kind.startsWith('idle') ? '–' : signed(median(list.map((reading, index) => reading.rss - (appBase[index]?.rss ?? Number.NaN)))),
      kind === 'idle node' ? '–' : signed(median(minus('anon'))),
      kind === 'idle node' ? '–' : signed(median(minus('file'))),
      Number.isNaN(heap[0]) ? '–' : `${mb(median(heap))} / ${mb(median(heapTotal))}`,
      source === quiet ? (collected.length === 0 ? 'none came' : `${collected.length}/${list.length}: ${median(collected).toFixed(1)} ms (CPU ${median(collectedCpu).toFixed(1)} ms)`) : '–',
    ];
  };
  const rows = kinds.flatMap((kind) => (kind.startsWith('idle') ? [row(kind, readings, kind)] : [row(kind, readings, kind), row(kind, quiet, `${kind}${QUIET}`)]));
  const markdown = [
    `### Master memory over an idle node (Node ${process.version}, ${rounds} round${rounds > 1 ? 's' : ''}, each contender started afresh; fetchers poll every ${interval} ms, read after the first poll and ${polls} more)`,
    '',
    table(['process', 'RSS MB (median)', 'over idle node, same round: RSS MB (range)', 'over idle node + app imports: RSS MB', 'anonymous MB', 'file-backed MB', 'JS heap used / total MB', 'idle collection before the reading: how many, median wall ms (CPU ms)'], rows),
    '',
    'From /proc/<pid>/smaps_rollup (Rss, Anonymous; file-backed = the rest, mostly pages of the node binary). "idle node" is `node -e \'setInterval(()=>{},1e3)\'`; "+ app imports" also imports node:http and node:module, as the bench app does at its top level. The heap columns come from the master\'s own process.memoryUsage() (no GC first).',
    '',
    `"(quiet)" rows: the same master read again after its idle collection (src/core/idle-gc.ts: one memory-reducing GC once the master is quiet after work, at most one per 30 s), as a master polling every few minutes is between polls; a polling master here keeps polling every ${interval} ms, so the reading waits for its next collection (up to 40 s). A build without idle collections ("none came") is read after the same wait.`,
    '',
    "Reading it on Node 22 and 24: there the app's `import http from \'node:http\'` (any ESM import of node:http) reads every export of the module, and its lazy WebSocket, CloseEvent and MessageEvent getters load Node's own undici: the \"+ app imports\" row costs 10-14 MB there against ~1 MB on Node 20 (a CommonJS `require(\'node:http\')` does not pay it). That is the app's cost, paid in the master because the master runs the app's top level; overseer itself takes node:http without it. \"over idle node\" is what the master costs in all; \"over idle node + app imports\" is overseer's share.",
  ].join('\n');
  return { name: 'master-memory', markdown, data: { rounds, polls, interval, readings, quiet } };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('master-memory', masterMemorySection);
