/**
 * When the master polls its fetcher: every fetcher.interval, never sooner than minFetchInterval
 * after the previous poll began, early when the fetcher hints at a change, and with exponential
 * backoff (from minFetchInterval up to the interval) after failures. A failure never ends the loop.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Fetcher } from './fetcher.js';

export interface FetchLoopOptions {
  readonly fetcher: Fetcher;
  readonly minInterval: number;
  /** One poll; throwing counts as a failure and backs off. */
  readonly poll: (signal: AbortSignal) => Promise<void>;
  readonly onFailure: (error: unknown, retryInMs: number) => void;
  /** Each poll ended, well or not (the master's idle collection counts it as work done). */
  readonly onSettled?: (() => void) | undefined;
}

export class FetchLoop {
  readonly #options: FetchLoopOptions;
  readonly #stop = new AbortController();
  /** Separate from #stop: a poll under way may be let finish. */
  readonly #abortPolls = new AbortController();
  #current: Promise<void> | undefined;
  /** Aborted to end the current wait early (pollNow). */
  #wake: AbortController | undefined;
  /** pollNow() came while a poll was under way: poll again once it ends, since it may have looked too early. */
  #pollAgain = false;
  #running: Promise<void> | undefined;

  constructor(options: FetchLoopOptions) {
    this.#options = options;
  }

  start(): void {
    this.#running ??= this.#loop();
  }

  /**
   * Stops polling. With `finishCurrent`, a poll under way may complete first (a CLI under
   * noRestart lets its upgrade land before it exits); otherwise it is aborted.
   */
  async stop(finishCurrent = false): Promise<void> {
    this.#stop.abort();
    if (!finishCurrent) this.#abortPolls.abort();
    await this.#current?.catch(() => {});
    this.#abortPolls.abort();
    // The loop itself: its wait and its change watch end with it.
    await this.#running?.catch(() => {});
    await this.#options.fetcher.close?.();
  }

  /** True while a poll (its download, check, install and handoff) is under way. */
  get polling(): boolean {
    return this.#current !== undefined;
  }

  /** Polls as soon as minInterval allows, instead of waiting out the interval; never lost during a poll. */
  pollNow(): void {
    if (this.#wake) this.#wake.abort();
    else this.#pollAgain = true;
  }

  async #loop(): Promise<void> {
    const { fetcher, minInterval } = this.#options;
    const signal = this.#stop.signal;
    const interval = Math.max(fetcher.interval, minInterval);
    let failures = 0;
    const jitter = Math.min(0.5, Math.max(0, fetcher.jitter ?? 0));
    // A fleet restarted at once spreads its first polls too.
    if (jitter > 0) await this.#wait(Math.random() * jitter * interval, Date.now() - minInterval, new Promise<never>(() => {}));
    while (!signal.aborted) {
      const began = Date.now();
      let delay = jittered(interval, jitter, minInterval);
      // Watched from before the poll: a change while it runs (it may have looked too early)
      // must bring the next poll forward, not wait out the interval.
      const watching = new AbortController();
      const hinted = this.#watch(watching.signal);
      try {
        this.#current = this.#options.poll(this.#abortPolls.signal);
        try {
          await this.#current;
          failures = 0;
        } catch (error) {
          if (signal.aborted) return;
          failures++;
          delay = Math.min(interval, minInterval * 2 ** (failures - 1));
          this.#options.onFailure(error, delay);
        } finally {
          this.#current = undefined;
          this.#options.onSettled?.();
        }
        await this.#wait(delay, began, hinted);
      } finally {
        watching.abort();
      }
    }
  }

  /** Resolves when the fetcher hints at a change before `signal` aborts; never rejects, never resolves without a hint. */
  #watch(signal: AbortSignal): Promise<void> {
    const { fetcher } = this.#options;
    if (!fetcher.changed) return new Promise<never>(() => {});
    return fetcher.changed(signal).then(
      () => (signal.aborted ? new Promise<never>(() => {}) : undefined),
      () => new Promise<never>(() => {}),
    );
  }

  /** Sleeps `delay`, or less when the fetcher's hint fires (or fired during the poll), but never under minInterval since `began`. */
  async #wait(delay: number, began: number, hinted: Promise<void>): Promise<void> {
    const { minInterval } = this.#options;
    const waiting = new AbortController();
    const stop = () => waiting.abort();
    this.#stop.signal.addEventListener('abort', stop, { once: true });
    // Stopped while the poll finished (stop(true)): no wait at all.
    if (this.#stop.signal.aborted) waiting.abort();
    const wake = new AbortController();
    this.#wake = wake;
    try {
      const timer = sleep(delay, undefined, { signal: waiting.signal });
      const floor = () => sleep(Math.max(0, minInterval - (Date.now() - began)), undefined, { signal: waiting.signal });
      const woken = new Promise<void>((resolve) => wake.signal.addEventListener('abort', () => resolve(), { once: true })).then(floor);
      if (this.#pollAgain) {
        this.#pollAgain = false;
        wake.abort();
      }
      await Promise.race([timer, hinted.then(floor), woken]);
    } catch {
      // Aborted: stopping, or the other branch won.
    } finally {
      this.#wake = undefined;
      this.#stop.signal.removeEventListener('abort', stop);
      waiting.abort();
    }
  }
}

/** The interval ± jitter (a fraction of it), never under minInterval. */
export function jittered(interval: number, jitter: number, minInterval: number): number {
  if (jitter <= 0) return interval;
  return Math.max(minInterval, Math.round(interval * (1 + (Math.random() * 2 - 1) * jitter)));
}
