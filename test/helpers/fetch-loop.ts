/**
 * A FetchLoop around a fake fetcher whose polls the test ends one by one: `polls` emits 'start'
 * with each poll's number, `release()` ends the oldest poll under way. With `hints`, the fetcher
 * has a changed() watch that `hint()` fires, as the File fetcher's watch would. The loop is
 * stopped (and every poll released) after the test.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { TestContext } from 'node:test';
import { FetchLoop } from '../../src/upgrade/fetch-loop.ts';
import type { Fetcher } from '../../src/upgrade/fetcher.ts';

export interface FakeLoop {
  readonly loop: FetchLoop;
  readonly polls: EventEmitter;
  /** Ends the oldest poll under way. */
  release(): void;
  /** Fires the fetcher's changed() watch (with `hints` only). */
  hint(): void;
}

export function fakeLoop(t: TestContext, options: { interval?: number; hints?: boolean } = {}): FakeLoop {
  const polls = new EventEmitter();
  const hints = new EventEmitter();
  const releases: Array<() => void> = [];
  let count = 0;
  const fetcher: Fetcher = {
    name: 'test',
    interval: options.interval ?? 600_000,
    fetch: async () => ({ type: 'none' }),
    ...(options.hints ? {
      changed: (signal: AbortSignal) => new Promise<void>((resolve) => {
        const fire = () => {
          hints.off('hint', fire);
          resolve();
        };
        hints.on('hint', fire);
        signal.addEventListener('abort', fire, { once: true });
      }),
    } : {}),
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
  return { loop, polls, release: () => releases.shift()?.(), hint: () => hints.emit('hint') };
}
