/**
 * FileFetcher on real files in a temp directory: missing files, files that appear, files still
 * being written, the fs.watch hint, gzip, and a file replaced between poll and download.
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { FileFetcher, type FileFetcherOptions } from '../../fetchers/file.ts';
import { isOverseerError } from '../../src/errors.ts';
import type { FetchContext, FetchResult, Release } from '../../src/upgrade/fetcher.ts';

let dir: string;
let count = 0;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'overseer-file-fetcher-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A path of its own for each test, in a directory of its own (so watch events do not cross). */
async function releasePath(name = 'app.mjs'): Promise<string> {
  count += 1;
  const own = path.join(dir, `case-${count}`);
  await mkdir(own);
  return path.join(own, name);
}

function context(signal: AbortSignal = new AbortController().signal): FetchContext {
  return { signal, currentSha256: '0'.repeat(64), currentVersion: undefined };
}

function release(result: FetchResult): Release {
  assert.equal(result.type, 'update');
  return result.release;
}

async function read(body: Readable | AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString();
}

/** Rejects if `promise` has not settled within `ms` (a deadline, not a sleep). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

describe('FileFetcher', () => {
  test('a missing file is "none"; once it appears it is an update named by mtime, size and inode', async () => {
    const file = await releasePath();
    const fetcher = new FileFetcher({ path: file });
    assert.deepEqual(await fetcher.fetch(context()), { type: 'none' });
    await writeFile(file, 'console.log("v1")\n');
    const found = release(await fetcher.fetch(context()));
    assert.match(found.id ?? '', /^\d+(\.\d+)?:18:\d+$/);
    assert.equal(found.size, 18);
    assert.equal(found.gzip, false);
    assert.equal(found.source, file);
    assert.equal(await read(await found.open(new AbortController().signal)), 'console.log("v1")\n');
    assert.equal(release(await fetcher.fetch(context())).id, found.id, 'an unchanged file keeps its id');
  });

  test('a file still being appended to is not taken until it stops changing', async () => {
    const file = await releasePath();
    await writeFile(file, 'part 0\n');
    let parts = 1;
    // The writer appends every 10 ms, well inside the fetcher's 250 ms quiet period.
    const writer = setInterval(() => {
      appendFileSync(file, `part ${parts}\n`);
      parts += 1;
    }, 10);
    const fetcher = new FileFetcher({ path: file });
    try {
      for (let poll = 0; poll < 3; poll += 1) {
        assert.deepEqual(await fetcher.fetch(context()), { type: 'none' }, `poll ${poll} while writing`);
      }
    } finally {
      clearInterval(writer);
    }
    const expected = Array.from({ length: parts }, (_, index) => `part ${index}\n`).join('');
    const found = release(await fetcher.fetch(context()));
    assert.equal(found.size, Buffer.byteLength(expected));
    assert.equal(await read(await found.open(new AbortController().signal)), expected);
  });

  test('an empty file is "none"', async () => {
    const file = await releasePath();
    await writeFile(file, '');
    assert.deepEqual(await new FileFetcher({ path: file }).fetch(context()), { type: 'none' });
  });

  test('a path ending in .gz is a gzip release', async () => {
    const file = await releasePath('app.mjs.gz');
    await writeFile(file, Buffer.from([0x1f, 0x8b, 8, 0]));
    assert.equal(release(await new FileFetcher({ path: file }).fetch(context())).gzip, true);
  });

  test('changed() resolves when the file is written, and when its signal aborts', async () => {
    const file = await releasePath();
    await writeFile(path.join(path.dirname(file), 'unrelated.txt'), 'x');
    const fetcher = new FileFetcher({ path: file });
    const controller = new AbortController();
    let settled = false;
    const changed = fetcher.changed(controller.signal).then(() => {
      settled = true;
    });
    await writeFile(path.join(path.dirname(file), 'unrelated.txt'), 'y');
    await writeFile(file, 'v2');
    await within(changed, 5000, 'changed() after a write');
    assert.equal(settled, true);

    const missing = new FileFetcher({ path: path.join(dir, 'no-such-dir', 'app.mjs') });
    const aborter = new AbortController();
    const waiting = missing.changed(aborter.signal);
    aborter.abort();
    await within(waiting, 1000, 'changed() after abort');
  });

  test('aborting the signal during the quiet period rejects with its reason', async () => {
    const file = await releasePath();
    await writeFile(file, 'x');
    const controller = new AbortController();
    const pending = new FileFetcher({ path: file }).fetch(context(controller.signal));
    const reason = new Error('master stopping');
    controller.abort(reason);
    await assert.rejects(pending, (error: unknown) => error === reason);
  });

  test('a file replaced between poll and download is refused; the next poll offers the new one', async () => {
    const file = await releasePath();
    await writeFile(file, 'old');
    const fetcher = new FileFetcher({ path: file });
    const found = release(await fetcher.fetch(context()));
    await writeFile(`${file}.tmp`, 'newer bytes');
    await rename(`${file}.tmp`, file);
    await assert.rejects(
      found.open(new AbortController().signal),
      (error: unknown) => isOverseerError(error, 'ERR_OVERSEER_FETCH_FAILED') && /changed between the poll and the download/.test(error.message),
    );
    const next = release(await fetcher.fetch(context()));
    assert.notEqual(next.id, found.id);
    assert.equal(await read(await next.open(new AbortController().signal)), 'newer bytes');
  });

  test('a directory at the path is ERR_OVERSEER_FETCH_FAILED', async () => {
    const file = await releasePath();
    await mkdir(file);
    await assert.rejects(
      new FileFetcher({ path: file }).fetch(context()),
      (error: unknown) => isOverseerError(error, 'ERR_OVERSEER_FETCH_FAILED') && /not a regular file/.test(error.message),
    );
  });

  test('options: defaults and validation', () => {
    const fetcher = new FileFetcher({ path: 'relative/app.mjs' });
    assert.equal(fetcher.interval, 1000);
    assert.equal(fetcher.name, 'file');
    const invalid: Array<[unknown, RegExp]> = [
      [{}, /FileFetcher\.path must be given/],
      [{ path: '' }, /FileFetcher\.path must be a non-empty string; got ""/],
      [{ path: 42 }, /FileFetcher\.path must be a non-empty string; got 42/],
      [{ path: 'a', interval: -5 }, /FileFetcher\.interval must be .*got -5/],
      [{ path: 'a', watch: true }, /FileFetcher has no option "watch"; its options are path, interval/],
      [null, /FileFetcher options must be an object/],
    ];
    for (const [options, pattern] of invalid) {
      assert.throws(
        () => new FileFetcher(options as FileFetcherOptions),
        (error: unknown) => isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG') && pattern.test(error.message),
        String(pattern),
      );
    }
  });
});
