/**
 * Fuzzes the release-folder extractor and the gzip path in front of it with fast-check, from
 * real archives (made with tar here) and hostile structures (link chains, `..`, absolute names,
 * hard links, long names, pax headers), mutated byte-wise. Whatever the input: nothing is
 * written outside the folder (a sentinel folder beside it stays as it was), every refusal is an
 * OverseerError with a known code, and no run hangs. Bounded: a few hundred runs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { OverseerError } from '../../src/errors.ts';
import { discardStaged, stageRelease } from '../../src/upgrade/bundle.ts';
import { extractTar } from '../../src/upgrade/tar.ts';
import { tempDir } from '../helpers/master.ts';
import { linkChain, listing, pax, tar, type TarEntry } from './tar-archive.ts';

/** Codes a hostile or broken archive may be refused with (DOWNLOAD_FAILED: not valid gzip). */
const CODES = new Set(['ERR_OVERSEER_UNSAFE_ARCHIVE', 'ERR_OVERSEER_DOWNLOAD_FAILED', 'ERR_OVERSEER_TOO_LARGE']);
const RUN_DEADLINE_MS = 10_000;

const base = tempDir('overseer-fuzz-');
const sentinel = path.join(base, 'sentinel');
fs.mkdirSync(sentinel);
fs.writeFileSync(path.join(sentinel, 'keep.txt'), 'mine');
const work = path.join(base, 'work');
fs.mkdirSync(work);
const scratch = tempDir('overseer-fuzz-archives-');
const bundle = path.join(scratch, 'bundle');
fs.writeFileSync(bundle, '');

const expectedOutside = listing(base);

/** Real archives: gnu and pax formats, long names, inside links, an executable, an empty dir. */
function realArchives(): Buffer[] {
  const source = path.join(scratch, 'source');
  const long = `${'d'.repeat(110)}/${'f'.repeat(120)}.txt`;
  fs.mkdirSync(path.join(source, path.dirname(long)), { recursive: true });
  fs.mkdirSync(path.join(source, 'empty'));
  fs.writeFileSync(path.join(source, long), 'long');
  fs.writeFileSync(path.join(source, 'server.sh'), '#!/bin/sh\n', { mode: 0o755 });
  fs.writeFileSync(path.join(source, 'data.bin'), Buffer.alloc(1500, 7));
  fs.symlinkSync('server.sh', path.join(source, 'link'));
  fs.symlinkSync(`../${path.basename(long)}`, path.join(source, path.dirname(long), 'up'));
  return ['gnu', 'pax', 'ustar', 'v7'].map((format) => {
    const file = path.join(scratch, `${format}.tar`);
    const names = format === 'gnu' || format === 'pax' ? ['.'] : ['server.sh', 'data.bin', 'link', 'empty'];
    execFileSync('tar', [`--format=${format}`, '-cf', file, '-C', source, ...names]);
    return fs.readFileSync(file);
  });
}

const seeds = [
  ...realArchives(),
  tar(linkChain(4, 'sentinel/pwned', 'x')),
  tar([{ name: 'a', type: '2', link: 'x/y/../..' }, { name: 'x/', type: '5' }, { name: 'x/y', type: '2', link: '..' }, { name: 'a/sentinel/pwned', body: 'x' }]),
  tar([{ name: 'PaxHeader', type: 'x', body: pax({ path: `${'p'.repeat(150)}/f`, linkpath: '../../../..' }) }, { name: 'l', type: '2', link: 'ignored' }]),
  tar([{ name: 'h', type: '1', link: 'server.sh' }, { name: '././@LongLink', type: 'L', body: `${'n'.repeat(200)}\0` }, { name: 'x', body: 'long' }]),
];

/** Recomputes the checksum of every block that still says ustar, so mutations reach past it. */
function fixChecksums(archive: Buffer): Buffer {
  for (let at = 0; at + 512 <= archive.length; at += 512) {
    const block = archive.subarray(at, at + 512);
    if (block.subarray(257, 262).toString('latin1') !== 'ustar') continue;
    block.fill(' ', 148, 156);
    let sum = 0;
    for (const byte of block) sum += byte;
    block.write(`${sum.toString(8).padStart(6, '0').slice(-6)}\0 `, 148, 'latin1');
  }
  return archive;
}

const byteMutation = fc.record({
  seed: fc.nat({ max: seeds.length - 1 }),
  edits: fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 12 }),
  truncate: fc.option(fc.nat(), { nil: undefined }),
  fix: fc.boolean(),
}).map(({ seed, edits, truncate, fix }) => {
  const archive = Buffer.from(seeds[seed] as Buffer);
  // Edits land in the first blocks more often: that is where the headers are.
  for (const { at, byte } of edits) archive[at % Math.min(archive.length, at % 2 ? 2048 : archive.length)] = byte;
  const mutated = fix ? fixChecksums(archive) : archive;
  return truncate === undefined ? mutated : mutated.subarray(0, truncate % (mutated.length + 1));
});

const component = fc.constantFrom('a', 'b', 'd', 'l', 'u0', 'u1', 'sentinel', '..', '.', '', 'n'.repeat(130), 'é');
const relative = fc.array(component, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('/'));
const name = fc.oneof(
  { weight: 8, arbitrary: relative },
  { weight: 1, arbitrary: relative.map((value) => `/${value}`) },
  { weight: 1, arbitrary: fc.constant(path.join(sentinel, 'absolute')) },
);
const entry: fc.Arbitrary<TarEntry[]> = fc.record({
  name,
  type: fc.constantFrom('0', '0', '2', '2', '5', '1', '3', '6', 'x', 'L'),
  link: fc.oneof(relative, fc.constant(sentinel), fc.constant('../../../sentinel')),
  body: fc.string({ maxLength: 40 }),
}).map(({ name: entryName, type, link, body }): TarEntry[] => {
  if (type === 'x') return [{ name: 'PaxHeader', type, body: pax({ path: entryName, linkpath: link }) }, { name: 'p', type: '2', link: 'q' }];
  if (type === 'L') return [{ name: '././@LongLink', type, body: `${entryName}\0` }, { name: 'ignored', body }];
  return [{ name: entryName.slice(0, 100), type, link: link.slice(0, 100), body: type === '0' ? body : '' }];
});
const structural = fc.tuple(fc.array(entry, { maxLength: 8 }), fc.boolean()).map(([entries, chain]) =>
  tar([...(chain ? linkChain(4, 'sentinel/pwned', 'x') : []), ...entries.flat()]));

/** Short failures: the seed and path to replay, the error, and not megabytes of archive bytes. */
function settings(numRuns: number): fc.Parameters<unknown[]> {
  return {
    numRuns,
    reporter(details) {
      if (!details.failed) return;
      const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      throw new Error(`fuzz failure after ${details.numRuns} runs (replay with { seed: ${details.seed}, path: ${JSON.stringify(details.counterexamplePath)} }): ${error}`);
    },
  };
}

let run = 0;
/** What the runs came to, so a fuzzer that only ever hits the checksum is noticed. */
const outcomes = { extracted: 0, refused: new Map<string, number>() };
const reset = () => {
  outcomes.extracted = 0;
  outcomes.refused.clear();
};
/** Extracts `archive` (through stageRelease when `gzip`) and checks what the brief promises. */
async function attempt(archive: Buffer, gzip: false | 'clean' | Array<{ at: number; byte: number }>): Promise<void> {
  const root = path.join(work, `run-${++run}`, 'a', 'b', 'root');
  fs.mkdirSync(root, { recursive: true });
  const extract = async () => {
    if (gzip === false) {
      const file = path.join(scratch, 'fuzz.tar');
      fs.writeFileSync(file, archive);
      return extractTar(file, root);
    }
    const compressed = gzipSync(archive);
    if (gzip !== 'clean') for (const { at, byte } of gzip) compressed[at % compressed.length] = byte;
    const staged = await stageRelease({ bundlePath: bundle, body: Readable.from([compressed]), gzip: true, maxBytes: 1024 * 1024 });
    try {
      await extractTar(staged.tempPath, root);
    } finally {
      await discardStaged(staged);
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`run ${run} hung past ${RUN_DEADLINE_MS} ms`)), RUN_DEADLINE_MS);
  });
  try {
    await Promise.race([extract(), deadline]);
    outcomes.extracted++;
  } catch (error) {
    outcomes.refused.set((error as { code?: string }).code ?? '?', (outcomes.refused.get((error as { code?: string }).code ?? '?') ?? 0) + 1);
    assert.ok(error instanceof OverseerError, `not an OverseerError: ${String(error)}`);
    assert.ok(CODES.has(error.code), `unexpected code ${error.code}: ${error.message}`);
  } finally {
    clearTimeout(timer);
  }
  const runDir = path.join(work, `run-${run}`);
  assert.deepEqual(listing(runDir).filter((item) => !item.startsWith(`${path.join('a', 'b', 'root')}${path.sep}`)), ['a', path.join('a', 'b'), path.join('a', 'b', 'root')], 'nothing beside the folder');
  fs.rmSync(runDir, { recursive: true, force: true });
  assert.deepEqual(listing(base), expectedOutside, 'the sentinel folder is as it was');
}

after(() => {
  for (const dir of [base, scratch]) fs.rmSync(dir, { recursive: true, force: true });
});

describe('fuzzing the tar reader and the gzip path', () => {
  test('the seeds themselves: real archives extract, hostile ones are refused', async () => {
    for (const seed of seeds) await attempt(seed, false);
  });

  test('byte-wise mutations of real and hostile archives', async () => {
    reset();
    await fc.assert(fc.asyncProperty(byteMutation, (archive) => attempt(archive, false)), settings(200));
    assert.ok(outcomes.extracted > 0 && (outcomes.refused.get('ERR_OVERSEER_UNSAFE_ARCHIVE') ?? 0) > 0, JSON.stringify([outcomes.extracted, [...outcomes.refused]]));
    if (process.env.FUZZ_DEBUG) console.error(outcomes);
  });

  test('structural archives: link chains, .., absolute names, hard links, devices, long names, pax', async () => {
    reset();
    await fc.assert(fc.asyncProperty(structural, (archive) => attempt(archive, false)), settings(200));
    assert.ok(outcomes.extracted > 0 && (outcomes.refused.get('ERR_OVERSEER_UNSAFE_ARCHIVE') ?? 0) > 0, JSON.stringify([outcomes.extracted, [...outcomes.refused]]));
    if (process.env.FUZZ_DEBUG) console.error(outcomes);
  });

  test('through the gzip path, intact and with corrupted compressed bytes', async () => {
    const gzipEdits = fc.option(fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 }), { nil: undefined });
    await fc.assert(fc.asyncProperty(fc.oneof(byteMutation, structural), gzipEdits, (archive, edits) => attempt(archive, edits ?? 'clean')), settings(100));
    if (process.env.FUZZ_DEBUG) console.error(outcomes);
  });
});
