/**
 * Download and staging rate, side by side: the master downloading a release of --mb= MiB (1024 by
 * default) from a local release server, then `curl` writing the same bytes from the same server
 * to a file, alternated over --rounds= rounds (3 by default), with the ratio taken within each
 * round. Also the master's peak RSS growth (VmHWM after clear_refs) during the download, what
 * stays in its RSS 3 s after (anonymous / file-backed), and a second baseline: curl to a file,
 * then OpenSSL's sha256 of it (the floor of what the master does, which curl alone does not),
 * and a plain Node program downloading with undici and hashing each chunk as the master does
 * (bench/apps/download-client.mjs; bench/download-clients.ts has the whole ladder of clients).
 * `BENCH_DIST=<dir>` benchmarks another build (e.g. the one before a change) with the same script.
 *
 *   node --import tsx bench/download.ts [--mb=1024] [--rounds=3]
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startReleaseServer, type ReleaseServer } from '../support/release-server.ts';
import { CLIENT, timed } from './download-clients.ts';
import { distDir } from './lib/apps.ts';
import { loadAverage } from './lib/procs.ts';
import { log, runStandalone, type SectionResult } from './lib/section.ts';
import { median, table } from './lib/stats.ts';
import { peakDownload } from './upgrade.ts';

const MiB = 1024 * 1024;
const run = promisify(execFile);

/**
 * curl writing the release to a file: wall time and its CPU (user+sys, from the shell's `times`).
 * With `hash`, then `openssl dgst -sha256` of that file (OpenSSL's sha256, the one node:crypto
 * runs): the floor of the work the master must do that curl does not, one step after the other
 * on one thread, as the master's main thread does it. A second baseline, beside plain curl.
 */
async function curlToFile(server: ReleaseServer, size: number, hash = false): Promise<{ wallMs: number; cpuMs: number }> {
  const route = `/curl-${size}.bin`;
  server.publishGenerated(route, size, { sha256: false });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-bench-'));
  try {
    const started = performance.now();
    const script = hash ? 'curl -s -o "$1" "$2" && openssl dgst -sha256 "$1" >/dev/null && times' : 'curl -s -o "$1" "$2" && times';
    const { stdout } = await run('bash', ['-c', script, 'curl', path.join(dir, 'copy.bin'), server.url(route)]);
    const wallMs = performance.now() - started;
    // The second line of `times` is the children's user and system time: 0m1.234s 0m0.567s.
    const line = stdout.trim().split('\n')[1] ?? '';
    const seconds = [...line.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, match) => sum + Number(match[1]) * 60 + Number(match[2]), 0);
    return { wallMs, cpuMs: seconds * 1000 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A plain Node program (every JIT tier on) fetching the release with undici, hashing it, writing it: transfer ms. */
async function undiciClient(server: ReleaseServer, size: number): Promise<number> {
  const route = `/client-${size}.bin`;
  server.publishGenerated(route, size, { sha256: false });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-bench-'));
  try {
    return await timed(process.execPath, [CLIENT, 'undici', server.url(route), path.join(dir, 'copy.bin'), 'sha256']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function signedMb(bytes: number): string {
  return `${bytes < 0 ? '−' : '+'}${(Math.abs(bytes) / MiB).toFixed(1)} MB`;
}

function argument(name: string, fallback: number): number {
  const raw = process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  return raw === undefined ? fallback : Number(raw);
}

export async function downloadSection(): Promise<SectionResult> {
  const size = argument('mb', 1024) * MiB;
  const rounds = argument('rounds', 3);
  const server = await startReleaseServer();
  const rows: string[][] = [];
  const data: Array<Record<string, unknown>> = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      log(`download: round ${round}/${rounds}, ${size / MiB} MiB, load average ${loadAverage()}`);
      const download = await peakDownload(server, size);
      const curl = await curlToFile(server, size);
      const floor = await curlToFile(server, size, true);
      const clientRate = size / MiB / ((await undiciClient(server, size)) / 1000);
      const rate = size / MiB / (download.downloadMs / 1000);
      const curlRate = size / MiB / (curl.wallMs / 1000);
      const floorRate = size / MiB / (floor.wallMs / 1000);
      data.push({ round, download, curl, floor, rate, curlRate, floorRate, clientRate, load: loadAverage() });
      rows.push([
        String(round),
        `${rate.toFixed(0)} MB/s`,
        `${curlRate.toFixed(0)} MB/s`,
        `${(rate / curlRate).toFixed(2)}×`,
        `${floorRate.toFixed(0)} MB/s, ${(floor.cpuMs / 1000).toFixed(2)} s`,
        `${(rate / floorRate).toFixed(2)}×`,
        `${clientRate.toFixed(0)} MB/s`,
        `${(rate / clientRate).toFixed(2)}×`,
        `${(download.cpuMs / 1000).toFixed(2)} s`,
        `${(curl.cpuMs / 1000).toFixed(2)} s`,
        `+${((download.peakRss - download.rssBefore) / MiB).toFixed(1)} MB`,
        `${signedMb(download.idleAfter.anon - download.idleBefore.anon)} / ${signedMb(download.idleAfter.file - download.idleBefore.file)}`,
        `${(download.totalMs / 1000).toFixed(2)} s`,
        loadAverage(),
      ]);
    }
  } finally {
    await server.close();
  }
  const ratios = data.map((entry) => (entry.rate as number) / (entry.curlRate as number));
  const markdown = [
    `### Download of ${size / MiB} MiB: the master vs curl, same server, same run (build ${distDir})`,
    '',
    table(['round', 'overseer (first → last byte)', 'curl → file', 'overseer ÷ curl', 'curl → file, then sha256 (rate, CPU)', 'overseer ÷ that', 'undici client → file + sha256', 'overseer ÷ that', 'master CPU, publish → rejected', 'curl CPU', 'master peak RSS growth', 'idle master after, anon / file', 'published → rejected', 'load average'], rows),
    '',
    `Median overseer ÷ curl: ${median(ratios).toFixed(2)}×. CPU time (utime+stime from /proc and the shell's \`times\`) is steadier than wall time on a shared machine.`,
  ].join('\n');
  return { name: 'download', markdown, data: { size, rounds, dist: distDir, rounds_: data } };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('download', downloadSection);
