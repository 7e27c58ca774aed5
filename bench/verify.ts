/**
 * Section 6: verification cost. Hash throughput of node:crypto over a file (sha256, the minisign
 * prehash BLAKE2b-512, and the three hashes the stager runs per byte), overseer's sha256File,
 * and minisign verification with src/upgrade/minisign.ts against signatures from support/minisign.ts.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMinisignKey } from '../support/minisign.ts';
import type * as MinisignModule from '../src/upgrade/minisign.ts';
import type * as BundleModule from '../src/upgrade/bundle.ts';
import type * as HashModule from '../src/upgrade/hash.ts';
import { distDir } from './lib/apps.ts';
import { now } from './lib/clock.ts';
import { log, runStandalone, type SectionOptions, type SectionResult } from './lib/section.ts';
import { median, ms, table } from './lib/stats.ts';

const MiB = 1024 * 1024;

async function hashFile(file: string, algorithms: readonly string[]): Promise<void> {
  const hashes = algorithms.map((algorithm) => createHash(algorithm));
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 64 * 1024 })) {
    for (const hash of hashes) hash.update(chunk as Buffer);
  }
  for (const hash of hashes) hash.digest();
}

async function best(times: number, work: () => Promise<unknown> | unknown): Promise<{ median: number; min: number }> {
  const took: number[] = [];
  for (let index = 0; index < times; index++) {
    const started = now();
    await work();
    took.push(now() - started);
  }
  return { median: median(took), min: Math.min(...took) };
}

export async function verifySection(options: SectionOptions): Promise<SectionResult> {
  const size = options.quick ? 32 * MiB : 256 * MiB;
  const repeats = options.quick ? 2 : 7;
  const minisign = (await import(pathToFileURL(path.join(distDir, 'src/upgrade/minisign.js')).href)) as typeof MinisignModule;
  const bundle = (await import(pathToFileURL(path.join(distDir, 'src/upgrade/bundle.js')).href)) as typeof BundleModule;
  const hash = (await import(pathToFileURL(path.join(distDir, 'src/upgrade/hash.js')).href)) as typeof HashModule;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-bench-'));
  const file = path.join(dir, 'release.bin');
  const rows: string[][] = [];
  const data: Record<string, unknown> = { size };
  try {
    // Deterministic, incompressible-enough bytes, written in blocks (never whole in memory).
    const block = Buffer.alloc(MiB);
    for (let index = 0; index < block.length; index++) block[index] = (index * 2654435761) >>> 24;
    const out = fs.openSync(file, 'w');
    for (let written = 0; written < size; written += block.length) fs.writeSync(out, block);
    fs.closeSync(out);
    await hashFile(file, ['sha256']); // page cache warm: the rows measure hashing, not the disk

    log(`verify: hashing ${size / MiB} MB`);
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['read only (no hash)', () => hashFile(file, [])],
      ['sha256', () => hashFile(file, ['sha256'])],
      ['blake2b512 (minisign prehash)', () => hashFile(file, ['blake2b512'])],
      ['sha256 + blake2b512 + sha256 (what stageRelease hashes per byte of a plain release)', () => hashFile(file, ['sha256', 'blake2b512', 'sha256'])],
      ['overseer sha256File()', () => hash.sha256File(file)],
    ];
    for (const [name, work] of cases) {
      await work(); // warm: the first pass of each compiles and allocates
      const time = await best(repeats, work);
      rows.push([name, ms(time.median), `${((size / MiB) / (time.median / 1000)).toFixed(0)} MB/s`]);
      data[name] = time;
    }

    log('verify: minisign');
    const key = createMinisignKey();
    const publicKey = minisign.parsePublicKey(key.publicKey);
    const signatureText = key.sign(fs.readFileSync(file));
    const prehashHash = createHash('blake2b512');
    for await (const chunk of fs.createReadStream(file)) prehashHash.update(chunk as Buffer);
    const prehash = prehashHash.digest();
    const signature = minisign.parseSignature(signatureText, 'bench.minisig');
    const fileVerify = await best(repeats, () => minisign.verifyFileSignature(publicKey, signature, file));
    rows.push([`minisign verifyFileSignature() over the ${size / MiB} MB file`, ms(fileVerify.median), `${((size / MiB) / (fileVerify.median / 1000)).toFixed(0)} MB/s`]);
    const loops = 1000;
    const prehashVerify = await best(3, () => {
      for (let index = 0; index < loops; index++) minisign.verifySignature(publicKey, signature, { blake2b512: prehash });
    });
    rows.push(['minisign verifySignature() given the prehash (what an upgrade runs after the download)', `${(prehashVerify.median / loops * 1000).toFixed(0)} µs`, '–']);
    const parse = await best(3, () => {
      for (let index = 0; index < loops; index++) minisign.parseSignature(signatureText, 'bench.minisig');
    });
    rows.push(['minisign parseSignature()', `${(parse.median / loops * 1000).toFixed(0)} µs`, '–']);
    data.minisign = { fileVerify, prehashVerifyMs: prehashVerify.median / loops, parseMs: parse.median / loops };

    // The swap copies the running bundle to .previous before the rename: its cost grows with the bundle.
    for (const swapSize of options.quick ? [MiB, 10 * MiB] : [MiB, 100 * MiB]) {
      const target = path.join(dir, `app-${swapSize}.mjs`);
      const write = (file: string) => {
        const handle = fs.openSync(file, 'w');
        for (let written = 0; written < swapSize; written += block.length) fs.writeSync(handle, block, 0, Math.min(block.length, swapSize - written));
        fs.closeSync(handle);
      };
      const took: number[] = [];
      write(target);
      for (let index = 0; index < repeats; index++) {
        const staged = path.join(dir, `.app-${swapSize}.overseer-${String(index).padStart(16, '0')}.tmp.mjs`);
        write(staged);
        const started = now();
        await bundle.swapBundle({ tempPath: staged, targetPath: target });
        took.push(now() - started);
      }
      rows.push([`swapBundle() of a ${swapSize / MiB} MB bundle (lock, copy to .previous, fsync, rename, fsync dir)`, ms(median(took)), `${((swapSize / MiB) / (median(took) / 1000)).toFixed(0)} MB/s`]);
      data[`swap-${swapSize}`] = took;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const markdown = [
    `### Verification cost (${size / MiB} MB file in the page cache, median of ${repeats})`,
    '',
    table(['work', 'time ms', 'throughput'], rows),
  ].join('\n');
  return { name: 'verify', markdown, data };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('verify', verifySection);
