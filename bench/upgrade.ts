/**
 * Section 5: upgrade cost. End-to-end time from a release appearing on a local release server to
 * the new version answering, split into poll, download, verify, swap and handoff; and the master's
 * peak RSS (VmHWM after clear_refs) and download rate for 10 MB to 1 GB releases, against curl
 * and a bare node http.get copying the same bytes from the same server.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { startReleaseServer, type ReleaseServer } from '../support/release-server.ts';
import { overseerAppSource } from './lib/apps.ts';
import { now, sleep } from './lib/clock.ts';
import type { OverseerContender } from './lib/contenders.ts';
import { startPollingMaster } from './lib/polling-master.ts';
import { runLoad } from '../src/check/load.ts';
import { cpuMs, memory, resetPeak } from './lib/procs.ts';
import { log, runStandalone, type SectionOptions, type SectionResult } from './lib/section.ts';
import { mb, median, ms, table } from './lib/stats.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;

interface UpgradeTiming {
  readonly waitForPollMs: number;
  readonly pollMs: number;
  readonly downloadMs: number;
  readonly verifyMs: number;
  readonly swapMs: number;
  /** Swap done → the new child answers a request. */
  readonly handoffMs: number;
  readonly totalMs: number;
  readonly bootMs: number;
}

async function endToEnd(server: ReleaseServer, upgrades: number, interval: number): Promise<UpgradeTiming[]> {
  const master = await startPollingMaster(server, '/app.mjs', { interval, sha256: true });
  const timings: UpgradeTiming[] = [];
  try {
    for (let index = 1; index <= upgrades; index++) {
      const version = `1.0.${index}`;
      const fromIndex = master.events.length;
      // A light probe load says when the new version first answers (each child answers with its pid).
      const probe = runLoad({ port: master.port, keepAlive: true, rate: 500, durationMs: 30_000 });
      await sleep(100 + Math.random() * interval);
      const published = now();
      server.publish('/app.mjs', overseerAppSource(version), { sha256: true });
      const applied = await master.waitEvent('upgrade-applied', (event) => event.version === version, 60_000, fromIndex);
      const available = await master.waitEvent('upgrade-available', undefined, 1000, fromIndex);
      const started = await master.waitEvent('handoff-started', (event) => event.reason === 'upgrade', 1000, fromIndex);
      const ready = await master.waitEvent('child-ready', undefined, 1000, fromIndex);
      await sleep(100);
      probe.stop();
      const records = await probe.done;
      let firstAnswer = Number.POSITIVE_INFINITY;
      for (let at = 0; at < records.pid.length; at++) {
        if (records.pid[at] === ready.pid) firstAnswer = Math.min(firstAnswer, (records.scheduled[at] as number) + (records.latency[at] as number));
      }
      const pollStart = available.at - applied.timings.pollMs;
      timings.push({
        waitForPollMs: pollStart - published,
        pollMs: applied.timings.pollMs,
        downloadMs: applied.timings.downloadMs,
        verifyMs: applied.timings.verifyMs,
        swapMs: applied.timings.swapMs,
        handoffMs: firstAnswer - started.at,
        totalMs: firstAnswer - published,
        bootMs: ready.bootMs,
      });
      await sleep(300);
    }
  } finally {
    await master.stop();
    fs.rmSync(master.dir, { recursive: true, force: true });
  }
  return timings;
}

interface DownloadResult {
  readonly size: number;
  readonly rssBefore: number;
  readonly peakRss: number;
  readonly downloadMs: number;
  readonly totalMs: number;
  /** The master's CPU (utime+stime) from publishing to the rejection. */
  readonly cpuMs: number;
  readonly outcome: string;
  /** The master's RSS, anonymous and file-backed, before the download and 3 s after the rejection: what the download leaves in an idle master. */
  readonly idleBefore: { anon: number; file: number };
  readonly idleAfter: { anon: number; file: number };
}

/**
 * A master polling `route` of `server` every 100 ms, which serves the master's own bundle (so
 * its first poll installs nothing), once that first poll is over: it loads undici and reads the
 * small release, a cost that is not a download's.
 */
export async function startDownloadMaster(server: ReleaseServer, route: string, execArgv: readonly string[] = []): Promise<OverseerContender> {
  const master = await startPollingMaster(server, route, { sha256: true, options: { maxBundleSize: 2 * 1024 * MiB }, execArgv });
  await sleep(300);
  return master;
}

/** One master per size: it first installs nothing (same sha), then downloads `size` bytes whose sidecar is wrong. */
export async function peakDownload(server: ReleaseServer, size: number, execArgv: readonly string[] = []): Promise<DownloadResult> {
  const route = `/big-${size}.mjs`;
  const master = await startDownloadMaster(server, route, execArgv);
  try {
    const { rss: rssBefore, anon: anonBefore, file: fileBefore } = memory(master.masterPid);
    resetPeak(master.masterPid);
    const fromIndex = master.events.length;
    server.publishGenerated(route, size, { sha256: false });
    server.publish(`${route}.sha256`, `${'0'.repeat(64)}  big.mjs\n`);
    const started = now();
    const cpuBefore = cpuMs(master.masterPid);
    const rejected = await master.waitEvent('upgrade-rejected', undefined, 600_000, fromIndex);
    const cpu = cpuMs(master.masterPid) - cpuBefore;
    const available = await master.waitEvent('upgrade-available', undefined, 1000, fromIndex);
    const progress = master.events.slice(fromIndex).filter((event) => event.type === 'upgrade-progress');
    const last = progress.findLast((event) => event.type === 'upgrade-progress' && event.received === size);
    const peakRss = memory(master.masterPid).hwm;
    // What stays once the master is idle again (a poll every 100 ms meanwhile, as before it).
    await sleep(3000);
    const after = memory(master.masterPid);
    return {
      idleBefore: { anon: anonBefore, file: fileBefore },
      idleAfter: { anon: after.anon, file: after.file },
      size,
      rssBefore,
      peakRss,
      downloadMs: (last?.at ?? rejected.at) - available.at,
      totalMs: rejected.at - started,
      cpuMs: cpu,
      outcome: rejected.code,
    };
  } finally {
    await master.stop();
    fs.rmSync(master.dir, { recursive: true, force: true });
  }
}

/** Plain copies of the same bytes from the same server: curl to /dev/null, curl to a file, node http.get to a file + fsync. */
async function plainCopies(server: ReleaseServer, size: number): Promise<Record<string, number>> {
  const route = `/plain-${size}.bin`;
  server.publishGenerated(route, size, { sha256: false });
  const url = server.url(route);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-bench-'));
  const file = path.join(dir, 'copy.bin');
  const results: Record<string, number> = {};
  try {
    const time = async (name: string, work: () => Promise<unknown>) => {
      const started = now();
      await work();
      results[name] = now() - started;
    };
    const curl = await run('curl', ['--version']).then(() => true, () => false);
    if (curl) {
      await time('curl → /dev/null', () => run('curl', ['-s', '-o', '/dev/null', url]));
      await time('curl → file', () => run('curl', ['-s', '-o', file, url]));
      fs.rmSync(file, { force: true });
    }
    await time('node http.get → file + fsync', () => new Promise<void>((resolve, reject) => {
      http.get(url, (response) => {
        const out = fs.createWriteStream(file);
        pipeline(response, out).then(() => {
          const fd = fs.openSync(file, 'r+');
          fs.fsyncSync(fd);
          fs.closeSync(fd);
          resolve();
        }, reject);
      }).on('error', reject);
    }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

export async function upgradeSection(options: SectionOptions): Promise<SectionResult> {
  const upgrades = options.quick ? 1 : 5;
  const interval = 200;
  const sizes = options.quick ? [10 * MiB] : [10 * MiB, 100 * MiB, 1024 * MiB];
  const server = await startReleaseServer();
  let timings: UpgradeTiming[];
  const downloads: DownloadResult[] = [];
  const copies: Record<number, Record<string, number>> = {};
  try {
    log(`upgrade: ${upgrades} end-to-end upgrades, HttpFetcher polling every ${interval} ms`);
    timings = await endToEnd(server, upgrades, interval);
    for (const size of sizes) {
      log(`upgrade: download of ${mb(size)} MB`);
      downloads.push(await peakDownload(server, size));
      copies[size] = await plainCopies(server, size);
    }
  } finally {
    await server.close();
  }
  const keys: (keyof UpgradeTiming)[] = ['waitForPollMs', 'pollMs', 'downloadMs', 'verifyMs', 'swapMs', 'handoffMs', 'totalMs', 'bootMs'];
  const labels: Record<keyof UpgradeTiming, string> = {
    waitForPollMs: 'wait for the next poll (interval 200 ms)',
    pollMs: 'poll (HEAD + sha256 sidecar)',
    downloadMs: 'download + hash to temp file + fsync',
    verifyMs: 'verify (sha256, echo-token check run, version)',
    swapMs: 'swap (lock, .previous copy, rename, fsync dir)',
    handoffMs: 'handoff until the new version answers',
    totalMs: 'total: published → new version answers',
    bootMs: "(new child's boot, inside the handoff)",
  };
  const timingRows = keys.map((key) => [labels[key], ms(median(timings.map((timing) => timing[key]))), ms(Math.min(...timings.map((timing) => timing[key]))), ms(Math.max(...timings.map((timing) => timing[key])))]);
  const downloadRows = downloads.map((download) => {
    const rate = (download.size / MiB) / (download.downloadMs / 1000);
    const copy = copies[download.size] ?? {};
    return [
      `${mb(download.size)} MB`,
      mb(download.rssBefore),
      mb(download.peakRss),
      `+${mb(download.peakRss - download.rssBefore)}`,
      `${ms(download.downloadMs)} ms (${rate.toFixed(0)} MB/s)`,
      `${ms(download.totalMs)} ms`,
      Object.entries(copy).map(([name, took]) => `${name}: ${((download.size / MiB) / (took / 1000)).toFixed(0)} MB/s`).join('; '),
      download.outcome,
    ];
  });
  const markdown = [
    `### Upgrade, end to end (${upgrades} upgrades of a small bundle over HttpFetcher; median, min, max)`,
    '',
    table(['step', 'median ms', 'min ms', 'max ms'], timingRows),
    '',
    '### Master peak RSS and rate while downloading a release (its sha256 sidecar is wrong on purpose: full download and hash, nothing runs)',
    '',
    table(['release', 'RSS before MB', 'peak RSS (VmHWM) MB', 'peak growth MB', 'download (first byte → last byte seen)', 'published → rejected', 'plain copy of the same bytes', 'outcome'], downloadRows),
  ].join('\n');
  return { name: 'upgrade', markdown, data: { timings, downloads, copies } };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('upgrade', upgradeSection);
