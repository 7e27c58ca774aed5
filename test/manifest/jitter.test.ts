import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FetchLoop, jittered } from '../../src/upgrade/fetch-loop.ts';

test('jittered: the interval ± the jitter, never under minInterval; 0 is exact', () => {
  const samples = Array.from({ length: 2000 }, () => jittered(10_000, 0.2, 50));
  assert.ok(samples.every((ms) => ms >= 8_000 && ms <= 12_000));
  assert.ok(samples.some((ms) => ms < 9_000) && samples.some((ms) => ms > 11_000), 'spread over the whole range');
  assert.ok(new Set(samples).size > 100);
  assert.equal(jittered(10_000, 0, 50), 10_000);
  assert.ok(Array.from({ length: 200 }, () => jittered(100, 0.5, 90)).every((ms) => ms >= 90));
});

test('a jittered first poll waits, and pollNow (ctl upgrade) ends the wait', async () => {
  let polls = 0;
  let polled!: () => void;
  const first = new Promise<void>((resolve) => (polled = resolve));
  const loop = new FetchLoop({
    fetcher: { name: 'test', interval: 600_000, jitter: 0.5, fetch: async () => ({ type: 'none' }) },
    minInterval: 10,
    poll: async () => {
      polls++;
      polled();
    },
    onFailure: () => {},
  });
  loop.start();
  loop.pollNow();
  await first;
  assert.equal(polls, 1);
  await loop.stop();
});
