/**
 * The floor under the master's download rate: plain Node programs downloading the same release
 * from the same local server, beside `curl` in each round (bench/apps/download-client.mjs says
 * what each client is). Each runs with Node's default flags (every JIT tier on), with and without
 * a sha256 of the body on its reading thread. Each rate is from the request to the last byte
 * written, as each client reports it (curl's `time_total`), start-up left out; the ratio is to
 * curl in the same round.
 *
 *   node --import tsx bench/download-clients.ts [--mb=1024] [--rounds=3]
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startReleaseServer } from '../support/release-server.ts';
import { benchDir, loadAverage } from './lib/procs.ts';
import { log, runStandalone, type SectionResult } from './lib/section.ts';
import { median, table } from './lib/stats.ts';

const MiB = 1024 * 1024;
const run = promisify(execFile);
export const CLIENT = path.join(benchDir, 'apps/download-client.mjs');
const CLIENTS = [
  ['http-get', ''],
  ['undici', ''],
  ['undici-wide', ''],
  ['raw-wide', ''],
  ['http-get', 'sha256'],
  ['undici', 'sha256'],
  ['undici-wide', 'sha256'],
  ['raw-wide', 'sha256'],
] as const;

function argument(name: string, fallback: number): number {
  const raw = process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  return raw === undefined ? fallback : Number(raw);
}

/** The transfer time a command prints, in ms (curl prints seconds: `scale` 1000). */
export async function timed(command: string, args: readonly string[], scale = 1): Promise<number> {
  const { stdout } = await run(command, args, { maxBuffer: 1024 * 1024 });
  const ms = Number(stdout.trim()) * scale;
  if (!(ms > 0)) throw new Error(`${command} ${args.join(' ')} printed ${JSON.stringify(stdout)}, not a time`);
  return ms;
}

export async function downloadClientsSection(): Promise<SectionResult> {
  const size = argument('mb', 1024) * MiB;
  const rounds = argument('rounds', 3);
  const server = await startReleaseServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-bench-'));
  const file = path.join(dir, 'copy.bin');
  const rates = new Map<string, number[]>();
  const ratios = new Map<string, number[]>();
  const note = (name: string, rate: number, curlRate: number) => {
    rates.set(name, [...(rates.get(name) ?? []), rate]);
    ratios.set(name, [...(ratios.get(name) ?? []), rate / curlRate]);
  };
  try {
    server.publishGenerated('/release.bin', size, { sha256: false });
    const url = server.url('/release.bin');
    for (let round = 1; round <= rounds; round++) {
      log(`download-clients: round ${round}/${rounds}, ${size / MiB} MiB, load average ${loadAverage()}`);
      const curlRate = size / MiB / ((await timed('curl', ['-s', '-o', file, '-w', '%{time_total}', url], 1000)) / 1000);
      note('curl', curlRate, curlRate);
      for (const [kind, hash] of CLIENTS) {
        const ms = await timed(process.execPath, [CLIENT, kind, url, file, hash]);
        if (fs.statSync(file).size !== size) throw new Error(`${kind} wrote ${fs.statSync(file).size} bytes, not ${size}`);
        note(`${kind}${hash ? ' + sha256' : ''}`, size / MiB / (ms / 1000), curlRate);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await server.close();
  }
  const range = (values: readonly number[], digits: number) =>
    `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
  const rows = [...rates].map(([name, values]) => [
    name,
    `${range(values, 0)} MB/s`,
    `${range(ratios.get(name)!, 2)}× (median ${median(ratios.get(name)!).toFixed(2)}×)`,
  ]);
  const markdown = [
    `### Plain Node clients downloading ${size / MiB} MiB beside curl (${rounds} rounds, Node ${process.version})`,
    '',
    table(['client', 'rate', '÷ curl, same round'], rows),
  ].join('\n');
  return { name: 'download-clients', markdown, data: { size, rounds, node: process.version, rates: Object.fromEntries(rates), ratios: Object.fromEntries(ratios) } };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('download-clients', downloadClientsSection);
