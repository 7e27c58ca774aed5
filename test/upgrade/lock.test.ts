/**
 * The bundle lock: held only while fn runs, released when it throws, refused to a second
 * holder with ERR_OVERSEER_LOCKED, taken over once stale, proper-lockfile loaded only at first use.
 * Cross-process contention and kill -9 recovery are in bundle.test.ts (through swapBundle).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isOverseerError } from '../../src/errors.js';
import { withBundleLock } from '../../src/upgrade/lock.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;
let target: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'overseer-lock-'));
  target = path.join(dir, 'app.mjs');
  await writeFile(target, '// v1\n');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

test('importing lock.ts does not load proper-lockfile; the first lock does', async () => {
  const script = `
    import { createRequire } from 'node:module';
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((key) => key.includes('proper-lockfile'));
    const { withBundleLock } = await import('./src/upgrade/lock.ts');
    const before = loaded();
    await withBundleLock(${JSON.stringify(target)}, async () => {});
    console.log(JSON.stringify({ before, after: loaded() }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root });
  assert.deepEqual(JSON.parse(stdout), { before: false, after: true });
});

test('holds <target>.lock while fn runs and removes it after', async () => {
  const result = await withBundleLock(target, async (signal) => {
    assert.equal(signal.aborted, false);
    assert.equal((await stat(`${target}.lock`)).isDirectory(), true);
    return 42;
  });
  assert.equal(result, 42);
  assert.equal(await exists(`${target}.lock`), false);
});

test('releases the lock when fn throws and passes the error through', async () => {
  await assert.rejects(
    withBundleLock(target, async () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(await exists(`${target}.lock`), false);
  assert.equal(await withBundleLock(target, async () => 'again'), 'again');
});

test('a second holder gets ERR_OVERSEER_LOCKED naming the lock path, the first is untouched', async () => {
  await withBundleLock(target, async (signal) => {
    await assert.rejects(withBundleLock(target, async () => 'never', { retries: 1 }), (error) => {
      assert.ok(isOverseerError(error, 'ERR_OVERSEER_LOCKED'));
      assert.equal(error.subject, `${target}.lock`);
      assert.match(error.message, new RegExp(`${target.replaceAll('.', '\\.')}\\.lock`));
      return true;
    });
    assert.equal(signal.aborted, false);
    assert.equal(await exists(`${target}.lock`), true);
  });
});

test('a waiting holder proceeds once the first releases within its retries', async () => {
  const order: string[] = [];
  let releaseFirst!: () => void;
  const first = withBundleLock(target, async () => {
    order.push('first in');
    await new Promise<void>((resolve) => (releaseFirst = resolve));
    order.push('first out');
  });
  while (order.length === 0) await new Promise((resolve) => setImmediate(resolve));
  const second = withBundleLock(target, async () => {
    order.push('second');
  });
  setTimeout(() => releaseFirst(), 100);
  await Promise.all([first, second]);
  assert.deepEqual(order, ['first in', 'first out', 'second']);
});

test('a stale lock (its holder died) is taken over', async () => {
  await mkdir(`${target}.lock`);
  const old = new Date(Date.now() - 60_000);
  await utimes(`${target}.lock`, old, old);
  assert.equal(await withBundleLock(target, async () => 'mine', { stale: 2000, retries: 0 }), 'mine');
  assert.equal(await exists(`${target}.lock`), false);
});

test('a fresh lock left by someone else is not taken over before it is stale', async () => {
  await mkdir(`${target}.lock`);
  await assert.rejects(withBundleLock(target, async () => 'never', { stale: 2000, retries: 0 }), (error) =>
    isOverseerError(error, 'ERR_OVERSEER_LOCKED'),
  );
});

test('the target file need not exist', async () => {
  assert.equal(await withBundleLock(path.join(dir, 'absent.mjs'), async () => 'ok'), 'ok');
});

test('a lock lost while held aborts the signal given to fn instead of throwing from a timer', async () => {
  await withBundleLock(
    target,
    async (signal) => {
      await rm(`${target}.lock`, { recursive: true });
      // proper-lockfile notices at its next refresh, 1000 ms after acquiring with stale 2000.
      const deadline = Date.now() + 5000;
      while (!signal.aborted && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(signal.aborted, true);
      assert.equal((signal.reason as NodeJS.ErrnoException).code, 'ECOMPROMISED');
    },
    { stale: 2000 },
  );
});

test('a missing directory fails at once rather than after the retries', async () => {
  const started = Date.now();
  await assert.rejects(withBundleLock(path.join(dir, 'nope', 'app.mjs'), async () => 'never'), (error) =>
    isOverseerError(error, 'ERR_OVERSEER_SWAP_FAILED'),
  );
  assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
});
