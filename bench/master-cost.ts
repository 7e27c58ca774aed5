/**
 * Section 4: what the master costs. RSS and CPU (/proc/<pid>/stat utime+stime) idle, under load,
 * and across 1,000 handoffs (RSS growth, open fds and temp files before and after), and with each
 * fetcher polling a local source (HTTP release server, a file, s3rver, a GitHub API stand-in).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startGitHubApi } from '../support/github-api.ts';
import { startReleaseServer } from '../support/release-server.ts';
import { S3_CREDENTIALS, startS3 } from '../support/s3.ts';
import { writeOverseerApp } from './lib/apps.ts';
import { sleep } from './lib/clock.ts';
import { startOverseer, type OverseerContender } from './lib/contenders.ts';
import { runLoad } from '../src/check/load.ts';
import { cpuMs, memory, openFds } from './lib/procs.ts';
import { log, runStandalone, type SectionOptions, type SectionResult } from './lib/section.ts';
import { int, mb, ms, table } from './lib/stats.ts';

interface Snapshot {
  readonly rss: number;
  readonly rssAnon: number;
  readonly rssFile: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly fds: number;
  readonly cpuMs: number;
}

async function snapshot(master: OverseerContender, gc = false): Promise<Snapshot> {
  const usage = await master.usage(gc);
  const resident = memory(master.masterPid);
  return {
    rss: resident.rss,
    rssAnon: resident.anon,
    rssFile: resident.file,
    heapTotal: usage.memory.heapTotal,
    heapUsed: usage.memory.heapUsed,
    external: usage.memory.external + usage.memory.arrayBuffers,
    fds: openFds(master.masterPid),
    cpuMs: cpuMs(master.masterPid),
  };
}

/** CPU the master spends per second of wall time over `seconds`, ms/s (= tenths of a percent of a core). */
async function cpuRate(pid: number, seconds: number): Promise<number> {
  const before = cpuMs(pid);
  const started = performance.now();
  await sleep(seconds * 1000);
  return ((cpuMs(pid) - before) / (performance.now() - started)) * 1000;
}

function listTemps(): string[] {
  return fs.readdirSync(os.tmpdir()).filter((name) => !name.startsWith('overseer-bench-'));
}

export async function masterCostSection(options: SectionOptions): Promise<SectionResult> {
  const idleSeconds = options.quick ? 1 : 10;
  const loadSeconds = options.quick ? 2 : 10;
  const handoffs = options.quick ? 20 : 1000;
  const polls = options.quick ? 3 : 20;
  const rows: string[][] = [];
  const data: Record<string, unknown> = {};

  // Idle, under load, and across many handoffs: one master, with --expose-gc so a GC can precede heap readings.
  log('master cost: idle and under load');
  const master = await startOverseer({ execArgv: ['--expose-gc'] });
  try {
    await sleep(1000);
    const idle = await snapshot(master);
    const idleCpu = await cpuRate(master.masterPid, idleSeconds);
    rows.push(['idle, no fetcher', mb(idle.rss), mb(idle.heapUsed), String(idle.fds), `${ms(idleCpu)} ms/s`]);
    const load = runLoad({ port: master.port, keepAlive: true, rate: 2000, durationMs: loadSeconds * 1000 });
    const loadCpu = await cpuRate(master.masterPid, loadSeconds);
    const loaded = await load.done;
    const underLoad = await snapshot(master);
    rows.push([`under 2000 rps (${int(loaded.scheduled.length)} requests)`, mb(underLoad.rss), mb(underLoad.heapUsed), String(underLoad.fds), `${ms(loadCpu)} ms/s`]);

    log(`master cost: ${handoffs} handoffs`);
    const tempsBefore = listTemps();
    const dirBefore = fs.readdirSync(master.dir);
    const before = await snapshot(master, true);
    const curve: Array<{ handoffs: number; rss: number; rssAnon: number; rssFile: number; heapTotal: number; heapUsed: number; fds: number }> = [];
    const started = performance.now();
    for (let index = 1; index <= handoffs; index++) {
      await master.restart!();
      if (index % Math.max(1, Math.floor(handoffs / 10)) === 0) {
        const point = await snapshot(master, true);
        curve.push({ handoffs: index, rss: point.rss, rssAnon: point.rssAnon, rssFile: point.rssFile, heapTotal: point.heapTotal, heapUsed: point.heapUsed, fds: point.fds });
      }
    }
    const elapsed = performance.now() - started;
    await sleep(500);
    const after = await snapshot(master, true);
    const tempsAfter = listTemps();
    const dirAfter = fs.readdirSync(master.dir);
    const newTemps = tempsAfter.filter((name) => !tempsBefore.includes(name));
    const cpuPerHandoff = (after.cpuMs - before.cpuMs) / handoffs;
    rows.push([`after ${handoffs} handoffs (GC first)`, `${mb(after.rss)} (${after.rss >= before.rss ? '+' : ''}${mb(after.rss - before.rss)})`, `${mb(after.heapUsed)} (${after.heapUsed >= before.heapUsed ? '+' : ''}${mb(after.heapUsed - before.heapUsed)})`, `${after.fds} (before ${before.fds})`, `${ms(cpuPerHandoff)} ms per handoff`]);
    data.handoffs = {
      count: handoffs, elapsedMs: elapsed, before, after, curve, cpuPerHandoff,
      bundleDirBefore: dirBefore, bundleDirAfter: dirAfter, newTempEntries: newTemps,
    };
    data.idle = { snapshot: idle, cpuMsPerSecond: idleCpu };
    data.underLoad = { snapshot: underLoad, cpuMsPerSecond: loadCpu };
  } finally {
    await master.stop();
  }

  // Fetchers: each master polls a local source every 200 ms; the release there is the running bundle.
  const fetcherRows: string[][] = [];
  const fetcherData: Record<string, unknown> = {};
  const interval = 200;
  const releaseServer = await startReleaseServer();
  const s3 = await startS3();
  const github = await startGitHubApi();
  try {
    const kinds = ['none', 'http', 'file', 's3', 'github'] as const;
    for (const kind of kinds) {
      log(`master cost: fetcher ${kind}, ${polls} polls`);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-bench-'));
      const bundle = writeOverseerApp(dir, '1.0.0');
      const bytes = fs.readFileSync(bundle);
      let fetcher: { kind: string; options: Record<string, unknown> } | undefined;
      let count: () => number = () => Number.NaN;
      if (kind === 'http') {
        releaseServer.publish('/app.mjs', bytes);
        fetcher = { kind, options: { url: releaseServer.url('/app.mjs'), interval } };
        count = () => releaseServer.requests.filter((request) => request.method === 'HEAD').length;
      } else if (kind === 'file') {
        const release = path.join(dir, 'release.mjs');
        fs.writeFileSync(release, bytes);
        fetcher = { kind, options: { path: release, interval } };
      } else if (kind === 's3') {
        await s3.put('app.mjs', bytes);
        fetcher = { kind, options: { bucket: s3.bucket, key: 'app.mjs', endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDENTIALS, interval } };
        count = () => s3.requests.filter((request) => request.method === 'HEAD').length;
      } else if (kind === 'github') {
        github.publishRelease({ tag: 'v1.0.0', assets: [{ name: 'app.mjs', body: bytes }] });
        fetcher = { kind, options: { owner: github.owner, repo: github.repo, baseUrl: github.baseUrl, asset: 'app.mjs', interval } };
        count = () => github.requests.filter((request) => request.server === 'api').length;
      }
      const startedAt = performance.now();
      const target = await startOverseer({ bundle, ...(fetcher ? { fetcher, options: { minFetchInterval: interval } } : {}) });
      try {
        // The first poll loads the fetcher's client and reads the release once; later polls only ask whether it changed.
        if (fetcher) await target.waitEvent('upgrade-skipped', undefined, 30_000);
        else await sleep(interval);
        const firstPollDone = performance.now();
        const cpuFirst = cpuMs(target.masterPid);
        const rssFirst = memory(target.masterPid).rss;
        const requestsBefore = count();
        await sleep(interval * polls);
        const later = (performance.now() - firstPollDone) / interval;
        const cpuLater = cpuMs(target.masterPid) - cpuFirst;
        const requests = count() - requestsBefore;
        const state = await snapshot(target);
        const events = target.events.filter((event) => event.type.startsWith('upgrade') || event.type === 'fetch-failed').map((event) => event.type);
        fetcherRows.push([
          kind === 'none' ? 'no fetcher' : kind,
          mb(rssFirst),
          mb(state.rss),
          mb(state.heapUsed),
          String(state.fds),
          `${ms(cpuFirst)} ms`,
          fetcher ? `${ms(cpuLater / later)} ms` : `${ms(cpuLater)} ms in ${polls * interval} ms`,
          Number.isFinite(requests) ? (requests / later).toFixed(1) : '–',
          [...new Set(events)].join(', ') || '–',
        ]);
        fetcherData[kind] = { rssAfterFirstPoll: rssFirst, snapshot: state, cpuUntilFirstPollDone: cpuFirst, cpuLater, laterPolls: later, requests, events, startMs: firstPollDone - startedAt };
      } finally {
        await target.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await releaseServer.close();
    await s3.close();
    await github.close();
  }
  data.fetchers = fetcherData;

  const curveData = (data.handoffs as { curve: Array<{ handoffs: number; rss: number; rssAnon: number; rssFile: number; heapTotal: number; heapUsed: number; fds: number }>; before: Snapshot }).curve;
  const start = (data.handoffs as { before: Snapshot }).before;
  const curveRows = [
    { handoffs: 0, rss: start.rss, rssAnon: start.rssAnon, rssFile: start.rssFile, heapTotal: start.heapTotal, heapUsed: start.heapUsed, fds: start.fds },
    ...curveData,
  ].map((point) => [String(point.handoffs), mb(point.rss), mb(point.rssAnon), mb(point.rssFile), mb(point.heapTotal), mb(point.heapUsed), String(point.fds)]);
  const handoffData = data.handoffs as { before: Snapshot; after: Snapshot; newTempEntries: string[]; bundleDirBefore: string[]; bundleDirAfter: string[]; elapsedMs: number };
  const markdown = [
    '### Master cost',
    '',
    table(['master', 'RSS MB', 'heap used MB', 'open fds', 'CPU'], rows),
    '',
    `${handoffs} handoffs took ${(handoffData.elapsedMs / 1000).toFixed(1)} s. RSS growth ${mb(handoffData.after.rss - handoffData.before.rss)} MB (target < 5 MB); fds ${handoffData.before.fds} → ${handoffData.after.fds}; ` +
      `bundle dir ${JSON.stringify(handoffData.bundleDirBefore)} → ${JSON.stringify(handoffData.bundleDirAfter)}; new entries in ${os.tmpdir()}: ${handoffData.newTempEntries.length} (other users' work lands there too: ${JSON.stringify(handoffData.newTempEntries.slice(0, 5))}).`,
    '',
    'The master across the handoffs (each reading after a full GC; RSS split into anonymous memory and mapped files such as the node binary):',
    '',
    table(['handoffs', 'RSS MB', 'anon MB', 'file-backed MB', 'V8 heap total MB', 'heap used MB', 'fds'], curveRows),
    '',
    `With a fetcher polling every ${interval} ms (local sources; the release is the running bundle: the first poll downloads it and skips it as the same sha256, later polls only ask whether it changed):`,
    '',
    table(['fetcher', 'RSS MB after 1st poll', `RSS MB after ${polls} more`, 'heap used MB', 'open fds', 'master CPU: start + 1st poll', 'master CPU per later poll', 'requests per later poll', 'events'], fetcherRows),
    '',
    'CPU from /proc/<pid>/stat has 10 ms ticks: per-poll figures are averages over the polls.',
  ].join('\n');
  return { name: 'master-cost', markdown, data };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('master-cost', masterCostSection);
