/**
 * The bundle on disk with real files and real processes: staging (hashes, gzip, caps, every
 * failure leaves no temp), swap and rollback (modes, symlinks, `.previous`), stale-temp cleanup,
 * two masters swapping at once, SIGKILL at each step of a swap, and constant memory for 200 MB.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import {
  cleanupStaleTemps,
  discardStaged,
  restorePrevious,
  stageRelease,
  swapBundle,
} from '../../src/upgrade/bundle.js';
import type { StageOptions, SwapStep } from '../../src/upgrade/bundle.js';
import { sha256File } from '../../src/upgrade/hash.js';
import { isOverseerError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { identifyContent, makeContent } from '../fixtures/bundle-content.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const workerPath = fileURLToPath(new URL('../fixtures/swap-worker.ts', import.meta.url));
const memoryPath = fileURLToPath(new URL('../fixtures/bundle-memory.ts', import.meta.url));
// proper-lockfile's floor: anything lower is raised to 2000.
const lockStale = 2000;

let dir: string;
let bundle: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'overseer-bundle-'));
  bundle = path.join(dir, 'app.mjs');
  await writeFile(bundle, makeContent(1));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const blake2b512 = (data: Buffer) => createHash('blake2b512').update(data).digest();

async function* chunksOf(data: Buffer, size = 4096): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

async function listDir(directory = dir): Promise<string[]> {
  return (await readdir(directory)).sort();
}

async function versionOf(file: string): Promise<number | undefined> {
  return identifyContent(await readFile(file));
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}

function hasCode(...codes: ErrorCode[]) {
  return (error: unknown) => {
    assert.ok(isOverseerError(error, ...codes), `expected ${codes.join('|')}, got ${String(error)}`);
    return true;
  };
}

function stage(body: StageOptions['body'], options: Partial<StageOptions> = {}) {
  return stageRelease({ bundlePath: bundle, body, maxBytes: 1024 * 1024, ...options });
}

/** Stages content and asserts the failure leaves the directory exactly as it was. */
async function assertStageFails(body: StageOptions['body'], options: Partial<StageOptions>, code: ErrorCode): Promise<Error> {
  const before = await listDir();
  let caught: unknown;
  await assert.rejects(stage(body, options), (error) => {
    caught = error;
    return hasCode(code)(error);
  });
  assert.deepEqual(await listDir(), before, 'the temp file is removed');
  return caught as Error;
}

describe('stageRelease', () => {
  test('streams a plain release beside the bundle, hashing what was published', async () => {
    const content = makeContent(2);
    const progress: Array<[number, number | undefined]> = [];
    const staged = await stage(chunksOf(content), {
      expectedSize: content.length,
      onProgress: (received, total) => progress.push([received, total]),
    });
    assert.equal(path.dirname(staged.tempPath), dir);
    assert.match(path.basename(staged.tempPath), /^\.app\.overseer-\d+-[0-9a-f]{16}\.tmp\.mjs$/);
    assert.equal(staged.targetPath, bundle);
    assert.deepEqual(await readFile(staged.tempPath), content);
    assert.equal(staged.sha256, sha256(content));
    assert.equal(staged.rawSha256, sha256(content));
    assert.deepEqual(staged.rawBlake2b512, blake2b512(content));
    assert.equal(staged.bytes, content.length);
    assert.equal(staged.rawBytes, content.length);
    assert.equal(progress.length, Math.ceil(content.length / 4096));
    assert.deepEqual(progress.at(-1), [content.length, content.length]);
    assert.equal(await versionOf(bundle), 1, 'the bundle itself is untouched');
  });

  test('inflates gzip: raw hashes over the .gz bytes, sha256 and size over the content', async () => {
    const content = makeContent(3);
    const published = gzipSync(content);
    const staged = await stage(Readable.from(chunksOf(published, 1000)), { gzip: true, expectedSize: published.length });
    assert.deepEqual(await readFile(staged.tempPath), content);
    assert.equal(staged.sha256, sha256(content));
    assert.equal(staged.rawSha256, sha256(published));
    assert.deepEqual(staged.rawBlake2b512, blake2b512(published));
    assert.equal(staged.bytes, content.length);
    assert.equal(staged.rawBytes, published.length);
  });

  test('prehash: false skips the BLAKE2b-512 and keeps every other hash and check', async () => {
    const content = makeContent(4);
    const plain = await stage(chunksOf(content), { prehash: false, expectedSize: content.length });
    assert.equal(plain.rawBlake2b512, undefined);
    assert.equal(plain.sha256, sha256(content));
    assert.equal(plain.rawSha256, sha256(content));
    const published = gzipSync(content);
    const gzipped = await stage(chunksOf(published), { prehash: false, gzip: true });
    assert.equal(gzipped.rawBlake2b512, undefined);
    assert.equal(gzipped.sha256, sha256(content), 'gzip: sha256 over the inflated content');
    assert.equal(gzipped.rawSha256, sha256(published), 'gzip: rawSha256 over the published bytes');
    await assertStageFails(chunksOf(Buffer.alloc(2 * 1024 * 1024, 1)), { prehash: false }, 'ERR_OVERSEER_TOO_LARGE');
  });

  test('keeps the extension as the last suffix for .cjs, .js and none', async () => {
    for (const name of ['app.cjs', 'app.js', 'app']) {
      const bundlePath = path.join(dir, name);
      await writeFile(bundlePath, 'x');
      const staged = await stageRelease({ bundlePath, body: chunksOf(Buffer.from('y')), maxBytes: 10 });
      const ext = path.extname(name).replaceAll('.', '\\.');
      assert.match(path.basename(staged.tempPath), new RegExp(`^\\.app\\.overseer-\\d+-[0-9a-f]{16}\\.tmp${ext}$`));
      await discardStaged(staged);
    }
  });

  test('copies the bundle mode bits, even those the umask would drop', async () => {
    await chmod(bundle, 0o770);
    const staged = await stage(chunksOf(makeContent(2)));
    assert.equal((await stat(staged.tempPath)).mode & 0o7777, 0o770);
  });

  test('over maxBytes: ERR_OVERSEER_TOO_LARGE naming the limit and maxBundleSize', async () => {
    const error = await assertStageFails(chunksOf(Buffer.alloc(5000, 1)), { maxBytes: 4096 }, 'ERR_OVERSEER_TOO_LARGE');
    assert.match(error.message, /4096/);
    assert.match(error.message, /maxBundleSize/);
  });

  test('an announced size over maxBytes fails before anything is written', async () => {
    let pulled = false;
    async function* body() {
      pulled = true;
      yield Buffer.from('x');
    }
    await assertStageFails(body(), { maxBytes: 100, expectedSize: 101 }, 'ERR_OVERSEER_TOO_LARGE');
    assert.equal(pulled, false);
  });

  test('an endless gzip bomb is stopped after a few MB inflated, having read little of it', async () => {
    const member = gzipSync(Buffer.alloc(1024 * 1024));
    let yielded = 0;
    let closed = false;
    async function* bomb() {
      try {
        for (;;) {
          yielded++;
          yield member;
        }
      } finally {
        closed = true;
      }
    }
    const error = await assertStageFails(bomb(), { gzip: true, maxBytes: 4 * 1024 * 1024 }, 'ERR_OVERSEER_TOO_LARGE');
    assert.match(error.message, /4194304 bytes once inflated/);
    // Stream read-ahead differs between Node lines (64 KB on 20, ~190 KB on 22): bound the bytes.
    assert.ok(yielded * member.length < 1024 * 1024, `read ${yielded} members of ${member.length} bytes before stopping`);
    assert.equal(closed, true, 'the source is closed');
  });

  test('a finite gzip bomb (32 MB of zeros) is refused too', async () => {
    const bomb = gzipSync(Buffer.alloc(32 * 1024 * 1024));
    await assertStageFails(chunksOf(bomb, 512), { gzip: true, maxBytes: 1024 * 1024 }, 'ERR_OVERSEER_TOO_LARGE');
  });

  test('fewer bytes than announced: ERR_OVERSEER_DOWNLOAD_FAILED', async () => {
    const content = makeContent(2);
    const error = await assertStageFails(
      chunksOf(content.subarray(0, 1000)),
      { expectedSize: content.length },
      'ERR_OVERSEER_DOWNLOAD_FAILED',
    );
    assert.match(error.message, new RegExp(`after 1000 of the ${content.length} bytes`));
  });

  test('more bytes than announced: ERR_OVERSEER_DOWNLOAD_FAILED', async () => {
    await assertStageFails(chunksOf(Buffer.alloc(2000, 1)), { expectedSize: 1000 }, 'ERR_OVERSEER_DOWNLOAD_FAILED');
  });

  test('a body that errors mid-way: ERR_OVERSEER_DOWNLOAD_FAILED with the cause', async () => {
    const body = new Readable({
      read() {
        this.push(Buffer.alloc(1000, 1));
        this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      },
    });
    const error = await assertStageFails(body, {}, 'ERR_OVERSEER_DOWNLOAD_FAILED');
    assert.match(error.message, /socket hang up/);
    assert.equal((error.cause as NodeJS.ErrnoException).code, 'ECONNRESET');
  });

  test('an iterable that throws mid-way: ERR_OVERSEER_DOWNLOAD_FAILED', async () => {
    async function* body() {
      yield Buffer.alloc(1000, 1);
      throw new Error('stream reset');
    }
    await assertStageFails(body(), {}, 'ERR_OVERSEER_DOWNLOAD_FAILED');
  });

  test('truncated or corrupt gzip: ERR_OVERSEER_DOWNLOAD_FAILED', async () => {
    const published = gzipSync(makeContent(2));
    await assertStageFails(chunksOf(published.subarray(0, published.length - 20)), { gzip: true }, 'ERR_OVERSEER_DOWNLOAD_FAILED');
    await assertStageFails(chunksOf(makeContent(2)), { gzip: true }, 'ERR_OVERSEER_DOWNLOAD_FAILED');
  });

  test('an empty release: ERR_OVERSEER_DOWNLOAD_FAILED', async () => {
    await assertStageFails(chunksOf(Buffer.alloc(0)), {}, 'ERR_OVERSEER_DOWNLOAD_FAILED');
    await assertStageFails(chunksOf(gzipSync(Buffer.alloc(0))), { gzip: true }, 'ERR_OVERSEER_DOWNLOAD_FAILED');
  });

  test('an abort mid-download removes the temp file and destroys the body', async () => {
    const controller = new AbortController();
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(1000, 1));
    const done = assertStageFails(body, { signal: controller.signal, onProgress: () => controller.abort(new Error('master stopping')) }, 'ERR_OVERSEER_DOWNLOAD_FAILED');
    const error = await done;
    assert.match(error.message, /aborted/);
    assert.equal(body.destroyed, true);
  });

  test('an abort before the start writes nothing', async () => {
    const before = await listDir();
    await assert.rejects(stage(chunksOf(Buffer.from('x')), { signal: AbortSignal.abort() }), hasCode('ERR_OVERSEER_DOWNLOAD_FAILED'));
    assert.deepEqual(await listDir(), before);
  });

  test('a throwing onProgress fails the download and removes the temp file', async () => {
    await assertStageFails(
      chunksOf(makeContent(2)),
      {
        onProgress: () => {
          throw new Error('listener bug');
        },
      },
      'ERR_OVERSEER_DOWNLOAD_FAILED',
    );
  });

  test('a missing bundle or unwritable directory: ERR_OVERSEER_SWAP_FAILED, nothing left', async () => {
    await assert.rejects(
      stageRelease({ bundlePath: path.join(dir, 'missing.mjs'), body: chunksOf(Buffer.from('x')), maxBytes: 10 }),
      hasCode('ERR_OVERSEER_SWAP_FAILED'),
    );
    if (process.getuid?.() === 0) return; // root writes anywhere
    await chmod(dir, 0o555);
    try {
      await assert.rejects(stage(chunksOf(Buffer.from('x'))), hasCode('ERR_OVERSEER_SWAP_FAILED'));
    } finally {
      await chmod(dir, 0o755);
    }
  });

  test('discardStaged removes the temp file and ignores one already gone', async () => {
    const staged = await stage(chunksOf(makeContent(2)));
    await discardStaged(staged);
    assert.equal(await exists(staged.tempPath), false);
    await discardStaged(staged);
  });
});

describe('swapBundle and restorePrevious', () => {
  test('swaps in the staged file, keeps the old one as .previous with its mode, leaves nothing else', async () => {
    const staged = await stage(chunksOf(makeContent(2)));
    // The staged file took the mode the bundle had at staging; .previous keeps the bundle's own.
    await chmod(staged.tempPath, 0o750);
    await chmod(bundle, 0o640);
    const steps: SwapStep[] = [];
    const result = await swapBundle(staged, { onStep: (step) => void steps.push(step) });
    assert.deepEqual(result, { targetPath: bundle, previousPath: `${bundle}.previous` });
    assert.deepEqual(steps, ['locked', 'previous-written', 'previous-renamed', 'renamed', 'synced']);
    assert.equal(await versionOf(bundle), 2);
    assert.equal(await versionOf(`${bundle}.previous`), 1);
    assert.equal((await stat(bundle)).mode & 0o7777, 0o750);
    assert.equal((await stat(`${bundle}.previous`)).mode & 0o7777, 0o640);
    assert.equal(await sha256File(bundle), staged.sha256);
    assert.deepEqual(await listDir(), ['app.mjs', 'app.mjs.previous']);

    await swapBundle(await stage(chunksOf(makeContent(3))));
    assert.equal(await versionOf(bundle), 3);
    assert.equal(await versionOf(`${bundle}.previous`), 2, 'an older .previous is replaced');
  });

  test('.previous is the old inode, not a copy, and keeps the old bytes whatever is written to the new bundle', async () => {
    const before = await stat(bundle);
    await swapBundle(await stage(chunksOf(makeContent(2))));
    const previous = await stat(`${bundle}.previous`);
    assert.equal(previous.ino, before.ino, 'hard-linked where the file system allows');
    assert.equal(previous.nlink, 1, 'the link is the old bytes\' only name once the swap is done');
    assert.notEqual((await stat(bundle)).ino, before.ino);
    // Someone editing the live bundle in place must not reach .previous.
    await writeFile(bundle, makeContent(7));
    assert.equal(await versionOf(`${bundle}.previous`), 1);
    assert.deepEqual(await listDir(), ['app.mjs', 'app.mjs.previous']);
  });

  test('restorePrevious puts .previous back and keeps it, so a second rollback is harmless', async () => {
    await chmod(bundle, 0o700);
    await swapBundle(await stage(chunksOf(makeContent(2))));
    await chmod(bundle, 0o755);
    await restorePrevious(bundle);
    assert.equal(await versionOf(bundle), 1);
    assert.equal((await stat(bundle)).mode & 0o7777, 0o700);
    assert.equal(await versionOf(`${bundle}.previous`), 1);
    await restorePrevious(bundle);
    assert.equal(await versionOf(bundle), 1);
    assert.deepEqual(await listDir(), ['app.mjs', 'app.mjs.previous']);
  });

  test('restorePrevious through a symlinked bundle restores the link target', async () => {
    const link = path.join(dir, 'current.mjs');
    await symlink('app.mjs', link);
    await swapBundle(await stageRelease({ bundlePath: link, body: chunksOf(makeContent(2)), maxBytes: 1 << 20 }));
    await restorePrevious(link);
    assert.equal((await lstat(link)).isSymbolicLink(), true);
    assert.equal(await versionOf(bundle), 1);
    assert.deepEqual(await listDir(), ['app.mjs', 'app.mjs.previous', 'current.mjs']);
  });

  test('restorePrevious without .previous: ERR_OVERSEER_SWAP_FAILED, bundle untouched', async () => {
    await assert.rejects(restorePrevious(bundle), (error) => {
      hasCode('ERR_OVERSEER_SWAP_FAILED')(error);
      assert.match((error as Error).message, /no previous bundle/);
      return true;
    });
    assert.equal(await versionOf(bundle), 1);
    assert.deepEqual(await listDir(), ['app.mjs']);
  });

  test('a staged file that vanished: ERR_OVERSEER_SWAP_FAILED, bundle and .previous untouched', async () => {
    await swapBundle(await stage(chunksOf(makeContent(2))));
    const staged = await stage(chunksOf(makeContent(3)));
    await discardStaged(staged);
    await assert.rejects(swapBundle(staged), hasCode('ERR_OVERSEER_SWAP_FAILED'));
    assert.equal(await versionOf(bundle), 2);
    assert.equal(await versionOf(`${bundle}.previous`), 1);
    assert.deepEqual(await listDir(), ['app.mjs', 'app.mjs.previous']);
  });

  test('a symlinked bundle: the link target is replaced and the link stays a link (overseer #20)', async () => {
    const releases = path.join(dir, 'releases');
    await mkdir(releases);
    const real = path.join(releases, 'app-v1.mjs');
    await writeFile(real, makeContent(1));
    const link = path.join(dir, 'current.mjs');
    await symlink(path.join('releases', 'app-v1.mjs'), link);

    const staged = await stageRelease({ bundlePath: link, body: chunksOf(makeContent(2)), maxBytes: 1024 * 1024 });
    assert.equal(staged.targetPath, real);
    assert.equal(path.dirname(staged.tempPath), releases);
    assert.match(path.basename(staged.tempPath), /^\.app-v1\.overseer-\d+-[0-9a-f]{16}\.tmp\.mjs$/);
    await swapBundle(staged);

    assert.equal((await lstat(link)).isSymbolicLink(), true);
    assert.equal(await readlink(link), path.join('releases', 'app-v1.mjs'));
    assert.equal(await versionOf(link), 2);
    assert.equal(await versionOf(`${real}.previous`), 1);
    assert.deepEqual(await listDir(releases), ['app-v1.mjs', 'app-v1.mjs.previous']);
  });

  test('sha256File streams the hash of a file', async () => {
    assert.equal(await sha256File(bundle), sha256(makeContent(1)));
  });
});

describe('cleanupStaleTemps', () => {
  test("removes only this bundle's temps, whatever else looks alike", async () => {
    const hex = '0123456789abcdef';
    const ours = [`.app.overseer-${hex}.tmp.mjs`, '.app.overseer-fedcba9876543210.tmp.mjs'];
    const others = [
      `.app.overseer-${hex}.tmp.cjs`, // app.cjs's temp
      `.app.overseer-${hex}.tmp`, // app's temp
      `.other.overseer-${hex}.tmp.mjs`,
      '.app.overseer-xyz.tmp.mjs',
      `.app.overseer-${hex}.tmp.mjs.bak`,
      `app.overseer-${hex}.tmp.mjs`,
      'app.mjs.previous',
      'notes.txt',
    ];
    for (const name of [...ours, ...others]) await writeFile(path.join(dir, name), 'x');
    await mkdir(path.join(dir, `.app.overseer-${'1'.repeat(16)}.tmp.mjs`));
    await symlink('notes.txt', path.join(dir, `.app.overseer-${'2'.repeat(16)}.tmp.mjs`));
    await mkdir(path.join(dir, 'app.mjs.lock'));
    const before = await listDir();

    const removed = await cleanupStaleTemps(bundle);
    assert.deepEqual(removed.sort(), ours.map((name) => path.join(dir, name)).sort());
    assert.deepEqual(
      await listDir(),
      before.filter((name) => !ours.includes(name)),
    );
    assert.deepEqual(await cleanupStaleTemps(bundle), []);
  });

  test("follows a symlinked bundle to its target's directory; olderThan spares fresh temps", async () => {
    const releases = path.join(dir, 'releases');
    await mkdir(releases);
    await writeFile(path.join(releases, 'app.mjs'), 'x');
    const link = path.join(dir, 'current.mjs');
    await symlink(path.join(releases, 'app.mjs'), link);
    const old = path.join(releases, '.app.overseer-aaaaaaaaaaaaaaaa.tmp.mjs');
    const fresh = path.join(releases, '.app.overseer-bbbbbbbbbbbbbbbb.tmp.mjs');
    await writeFile(old, 'x');
    await writeFile(fresh, 'x');
    const hourAgo = new Date(Date.now() - 3600_000);
    await utimes(old, hourAgo, hourAgo);

    assert.deepEqual(await cleanupStaleTemps(link, { olderThan: 60_000 }), [old]);
    assert.deepEqual(await cleanupStaleTemps(link), [fresh]);
  });
});

/** A swap-worker process, its stdout as lines. */
class Worker {
  readonly lines: string[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #stderr = '';
  #notify: Array<() => void> = [];

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, ['--import', 'tsx', workerPath], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    workers.add(this.child);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then(() => this.#wake());
    this.child.stderr?.on('data', (data: Buffer) => (this.#stderr += data.toString()));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      this.#wake();
    });
  }

  #wake(): void {
    for (const notify of this.#notify.splice(0)) notify();
  }

  /** Resolves with the first line matching `pattern`; rejects if the worker exits first or at the deadline. */
  async waitFor(pattern: RegExp, timeout = 15_000): Promise<string> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const line = this.lines.find((candidate) => pattern.test(candidate));
      if (line !== undefined) return line;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`worker exited before ${pattern}: ${this.lines.join(' | ')} ${this.#stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${pattern} in time: ${this.lines.join(' | ')} ${this.#stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#notify.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  resume(): void {
    this.child.stdin?.write('\n');
  }

  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

const workers = new Set<ChildProcess>();

after(() => {
  for (const child of workers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function workerEnv(bundlePath: string, versions: number[], extra: Record<string, string> = {}): Record<string, string> {
  return { WORKER_BUNDLE: bundlePath, WORKER_VERSIONS: versions.join(','), WORKER_STALE: String(lockStale), ...extra };
}

/** Runs `fn` over `items`, at most `limit` at a time (2 cores, tsx start-up is CPU bound). */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await fn(items[index]!);
      }
    }),
  );
  return results;
}

describe('two processes swapping one bundle', () => {
  test('the second waits for the first and then swaps after it', async () => {
    const first = new Worker(workerEnv(bundle, [2], { WORKER_PAUSE: 'locked' }));
    await first.waitFor(/^paused locked v2$/);
    const second = new Worker(workerEnv(bundle, [3]));
    await second.waitFor(/^swapping v3$/);
    first.resume();
    await first.waitFor(/^swapped v2$/);
    await second.waitFor(/^swapped v3$/);
    assert.deepEqual(await first.exited, { code: 0, signal: null });
    assert.deepEqual(await second.exited, { code: 0, signal: null });
    assert.equal(await versionOf(bundle), 3);
    assert.equal(await versionOf(`${bundle}.previous`), 2);
    assert.deepEqual(await listDir(), ['app.mjs', 'app.mjs.previous']);
  });

  test('the second gives up with ERR_OVERSEER_LOCKED naming the lock while the first holds it', async () => {
    const first = new Worker(workerEnv(bundle, [2], { WORKER_PAUSE: 'previous-written' }));
    await first.waitFor(/^paused previous-written v2$/);
    const second = new Worker(workerEnv(bundle, [3], { WORKER_RETRIES: '2' }));
    const line = await second.waitFor(/^error /);
    assert.ok(line.startsWith('error ERR_OVERSEER_LOCKED '), line);
    assert.ok(line.includes(`${bundle}.lock`), line);
    assert.equal((await second.exited).code, 2);
    assert.equal(await versionOf(bundle), 1, 'nothing was replaced');
    first.resume();
    await first.waitFor(/^swapped v2$/);
    await first.exited;
    assert.equal(await versionOf(bundle), 2);
    assert.deepEqual(await listDir(), ['app.mjs', 'app.mjs.previous']);
  });

  test('free-running swaps from both: each one swaps or is refused, the bundle is always whole', async () => {
    const a = new Worker(workerEnv(bundle, [10, 11, 12, 13, 14]));
    const b = new Worker(workerEnv(bundle, [20, 21, 22, 23, 24]));
    await Promise.all([a.waitFor(/^done$/), b.waitFor(/^done$/)]);
    await Promise.all([a.exited, b.exited]);
    const outcomes = [...a.lines, ...b.lines].filter((line) => /^(swapped|error)/.test(line));
    assert.equal(outcomes.length, 10);
    for (const line of outcomes) assert.match(line, /^(swapped v\d+|error ERR_OVERSEER_LOCKED .*)$/);
    const swapped = outcomes.filter((line) => line.startsWith('swapped')).map((line) => Number(line.slice('swapped v'.length)));
    assert.ok(swapped.includes(await versionOf(bundle) ?? -1));
    assert.ok([1, ...swapped].includes(await versionOf(`${bundle}.previous`) ?? -1));
    assert.deepEqual(await listDir(), ['app.mjs', 'app.mjs.previous']);
  });
});

describe('SIGKILL during a swap', () => {
  interface KillCase {
    readonly name: string;
    readonly env: Record<string, string>;
    /** Kill as soon as this line appears (the worker is paused there, or still running). */
    readonly killAt: RegExp;
    /** Exact outcome when the worker was paused; undefined when it kept running. */
    readonly expected?: { readonly target: number; readonly previous: number | undefined; readonly temps: number };
  }

  const paused = (step: string, target: number, previous: number | undefined, temps: number): KillCase => ({
    name: `paused at ${step}`,
    env: { WORKER_PAUSE: step },
    killAt: new RegExp(`^paused ${step} v2$`),
    expected: { target, previous, temps },
  });
  const running = (line: string): KillCase => ({
    name: `running, just after "${line}"`,
    env: { WORKER_LOOP: '1', WORKER_VERSIONS: '2,3,4', WORKER_PADDING: String(1024 * 1024) },
    killAt: new RegExp(`^${line}$`),
  });
  const cases: KillCase[] = [
    paused('staging', 1, undefined, 1),
    paused('locked', 1, undefined, 1),
    paused('previous-written', 1, undefined, 2),
    paused('previous-renamed', 1, 1, 1),
    paused('renamed', 2, 1, 0),
    paused('synced', 2, 1, 0),
    running('staged v3'),
    running('step locked v3'),
    running('step previous-written v4'),
    running('step renamed v2'),
    running('swapped v3'),
  ];

  test('leaves a whole bundle, old or new, and a lock that a new swap takes over once stale', async () => {
    // Workers start a few at a time (tsx start-up is CPU bound); the waits for stale locks overlap.
    const recoveries = await mapLimit(cases, 4, async (killCase) => {
      const caseDir = await mkdtemp(path.join(dir, 'case-'));
      const target = path.join(caseDir, 'app.mjs');
      const padding = killCase.env['WORKER_PADDING'] === undefined ? undefined : Number(killCase.env['WORKER_PADDING']);
      await writeFile(target, makeContent(1, padding));
      const worker = new Worker({ ...workerEnv(target, [2]), ...killCase.env });
      await worker.waitFor(killCase.killAt);
      await worker.kill();
      return { recovered: check(killCase, caseDir, target, padding, Date.now()) };
    });
    const failures = await Promise.all(recoveries.map(({ recovered }) => recovered));
    assert.deepEqual(
      failures.filter((failure) => failure !== undefined),
      [],
    );
  });

  /** Asserts the state a kill left and that a new swap succeeds; returns a failure message. */
  async function check(killCase: KillCase, caseDir: string, target: string, padding: number | undefined, killedAt: number): Promise<string | undefined> {
    try {
      const targetVersion = identifyContent(await readFile(target), padding);
      const previousVersion = (await exists(`${target}.previous`))
        ? identifyContent(await readFile(`${target}.previous`), padding)
        : undefined;
      const removed = await cleanupStaleTemps(target);
      assert.ok(targetVersion !== undefined && [1, 2, 3, 4].includes(targetVersion), `target is whole: ${targetVersion}`);
      if (await exists(`${target}.previous`)) assert.notEqual(previousVersion, undefined, '.previous is whole');
      if (killCase.expected !== undefined) {
        assert.equal(targetVersion, killCase.expected.target);
        assert.equal(previousVersion, killCase.expected.previous);
        assert.equal(removed.length, killCase.expected.temps);
      }

      const staged = await stageRelease({ bundlePath: target, body: chunksOf(makeContent(9, padding), 65536), maxBytes: 4 << 20 });
      await swapBundle(staged, { lockStale });
      // Stale after lockStale, counted from a lock mtime proper-lockfile may have set up to 1 s ahead.
      const recovery = Date.now() - killedAt;
      assert.ok(recovery < lockStale + 1000 + 2000, `swap after the kill took ${recovery} ms`);
      assert.equal(identifyContent(await readFile(target), padding), 9);
      assert.equal(identifyContent(await readFile(`${target}.previous`), padding), targetVersion);
      assert.deepEqual(await listDir(caseDir), ['app.mjs', 'app.mjs.previous']);
      return undefined;
    } catch (error) {
      return `${killCase.name}: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
});

describe('memory', () => {
  async function measure(env: Record<string, string>): Promise<{ bytes: number; growth: number }> {
    const child = spawn(process.execPath, ['--import', 'tsx', memoryPath], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    workers.add(child);
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, output);
    return JSON.parse(output) as { bytes: number; growth: number };
  }

  test('staging 200 MB grows peak RSS by less than 32 MB; the pipeline itself by less than 8 MB', async () => {
    const [fresh, reused] = await Promise.all([
      // Fresh 16 KiB chunks, as a TLS download delivers them: includes the body's own garbage.
      measure({ BUNDLE_MEMORY_MB: '200', BUNDLE_MEMORY_CHUNK: String(16 * 1024) }),
      // One reused 64 KiB chunk: only what stageRelease itself holds.
      measure({ BUNDLE_MEMORY_MB: '200', BUNDLE_MEMORY_CHUNK: String(64 * 1024), BUNDLE_MEMORY_REUSE: '1' }),
    ]);
    assert.equal(fresh.bytes, 200 * 1024 * 1024);
    assert.equal(reused.bytes, 200 * 1024 * 1024);
    assert.ok(fresh.growth < 32 * 1024 * 1024, `fresh chunks: peak RSS grew ${(fresh.growth / 1048576).toFixed(1)} MB`);
    assert.ok(reused.growth < 8 * 1024 * 1024, `reused chunk: peak RSS grew ${(reused.growth / 1048576).toFixed(1)} MB`);
  });
});
