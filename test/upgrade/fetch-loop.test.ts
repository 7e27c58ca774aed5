import assert from 'node:assert/strict';
import { once, EventEmitter } from 'node:events';
import { test, type TestContext } from 'node:test';
import { FetchLoop } from '../../src/upgrade/fetch-loop.ts';
import type { Fetcher } from '../../src/upgrade/fetcher.ts';

/** A loop whose polls the test releases one by one; `polls` emits 'start' with each poll's number. */
function controlledLoop(t: TestContext, interval: number) {
  const polls = new EventEmitter();
  const releases: Array<() => void> = [];
  let count = 0;
  const fetcher: Fetcher = { name: 'test', interval, fetch: async () => ({ type: 'none' }) };
  const loop = new FetchLoop({
    fetcher,
    minInterval: 10,
    poll: () => new Promise<void>((resolve) => {
      releases.push(resolve);
      polls.emit('start', ++count);
    }),
    onFailure: () => {},
  });
  t.after(async () => {
    for (const resolve of releases.splice(0)) resolve();
    await loop.stop();
  });
  return { loop, polls, release: () => releases.shift()?.() };
}

test('pollNow during a poll is not lost: the loop polls again as soon as minInterval allows', async (t) => {
  const { loop, polls, release } = controlledLoop(t, 600_000);
  const first = once(polls, 'start');
  loop.start();
  await first;
  loop.pollNow(); // while poll 1 is under way: it may have looked before the change it is asked for
  const second = once(polls, 'start', { signal: AbortSignal.timeout(5_000) });
  release();
  assert.deepEqual(await second, [2]);
  release();
});

test('pollNow while waiting polls at once; without it the loop waits out the interval', async (t) => {
  const { loop, polls, release } = controlledLoop(t, 600_000);
  const first = once(polls, 'start');
  loop.start();
  await first;
  release();
  // Nothing comes within a short look: the interval is ten minutes.
  await assert.rejects(once(polls, 'start', { signal: AbortSignal.timeout(200) }), { name: 'AbortError' });
  const second = once(polls, 'start', { signal: AbortSignal.timeout(5_000) });
  loop.pollNow();
  assert.deepEqual(await second, [2]);
  release();
});

/** A fetcher whose changed() the test fires by hand, as the File fetcher's watch would. */
function hintingLoop(t: TestContext) {
  const polls = new EventEmitter();
  const releases: Array<() => void> = [];
  const hints = new EventEmitter();
  let count = 0;
  const fetcher: Fetcher = {
    name: 'test',
    interval: 600_000,
    fetch: async () => ({ type: 'none' }),
    changed: (signal) => new Promise<void>((resolve) => {
      const fire = () => {
        hints.off('hint', fire);
        resolve();
      };
      hints.on('hint', fire);
      signal.addEventListener('abort', fire, { once: true });
    }),
  };
  const loop = new FetchLoop({
    fetcher,
    minInterval: 10,
    poll: () => new Promise<void>((resolve) => {
      releases.push(resolve);
      polls.emit('start', ++count);
    }),
    onFailure: () => {},
  });
  t.after(async () => {
    for (const resolve of releases.splice(0)) resolve();
    await loop.stop();
    assert.equal(hints.listenerCount('hint'), 0, 'every changed() watch was ended');
  });
  return { loop, polls, hint: () => hints.emit('hint'), release: () => releases.shift()?.() };
}

test('a changed() hint during a poll is not lost: the loop polls again right after it', async (t) => {
  const { loop, polls, hint, release } = hintingLoop(t);
  const first = once(polls, 'start');
  loop.start();
  await first;
  hint(); // the file changed while poll 1 looked at it
  const second = once(polls, 'start', { signal: AbortSignal.timeout(5_000) });
  release();
  assert.deepEqual(await second, [2]);
  release();
});

test('a changed() hint while waiting polls at once; without one the loop waits out the interval', async (t) => {
  const { loop, polls, hint, release } = hintingLoop(t);
  const first = once(polls, 'start');
  loop.start();
  await first;
  release();
  await assert.rejects(once(polls, 'start', { signal: AbortSignal.timeout(200) }), { name: 'AbortError' });
  const second = once(polls, 'start', { signal: AbortSignal.timeout(5_000) });
  hint();
  assert.deepEqual(await second, [2]);
  release();
});

test('stop(true) during a poll lets it finish, then the loop ends at once instead of waiting out the interval', { timeout: 30_000 }, async (t) => {
  const { loop, polls, release } = controlledLoop(t, 600_000);
  const first = once(polls, 'start');
  loop.start();
  await first;
  let finished = false;
  const stopped = loop.stop(true).then(() => (finished = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(finished, false, 'stop(true) waits for the poll under way');
  release();
  await stopped; // resolves only once the loop has ended: a 600 s wait would time the test out
});
