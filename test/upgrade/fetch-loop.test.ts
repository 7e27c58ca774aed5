import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { fakeLoop, type FakeLoop } from '../helpers/fetch-loop.ts';

test('pollNow during a poll is not lost: the loop polls again as soon as minInterval allows', async (t) => {
  const { loop, polls, release } = fakeLoop(t);
  const first = once(polls, 'start');
  loop.start();
  await first;
  loop.pollNow(); // while poll 1 is under way: it may have looked before the change it is asked for
  const second = once(polls, 'start', { signal: AbortSignal.timeout(5_000) });
  release();
  assert.deepEqual(await second, [2]);
  release();
});

// Either wake-up ends the wait at once; nothing comes within a short look without one (the interval is ten minutes).
for (const [name, hints, wake] of [
  ['pollNow while waiting polls at once', false, (loop: FakeLoop) => loop.loop.pollNow()],
  ['a changed() hint while waiting polls at once', true, (loop: FakeLoop) => loop.hint()],
] as const) {
  test(`${name}; without it the loop waits out the interval`, async (t) => {
    const fake = fakeLoop(t, { hints });
    const { loop, polls, release } = fake;
    const first = once(polls, 'start');
    loop.start();
    await first;
    release();
    await assert.rejects(once(polls, 'start', { signal: AbortSignal.timeout(200) }), { name: 'AbortError' });
    const second = once(polls, 'start', { signal: AbortSignal.timeout(5_000) });
    wake(fake);
    assert.deepEqual(await second, [2]);
    release();
  });
}

test('a changed() hint during a poll is not lost: the loop polls again right after it', async (t) => {
  const { loop, polls, hint, release } = fakeLoop(t, { hints: true });
  const first = once(polls, 'start');
  loop.start();
  await first;
  hint(); // the file changed while poll 1 looked at it
  const second = once(polls, 'start', { signal: AbortSignal.timeout(5_000) });
  release();
  assert.deepEqual(await second, [2]);
  release();
});

test('stop(true) during a poll lets it finish, then the loop ends at once instead of waiting out the interval', { timeout: 30_000 }, async (t) => {
  const { loop, polls, release } = fakeLoop(t);
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
