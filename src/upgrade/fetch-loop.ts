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
    await this.#options.fetcher.close?.();
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
    if (jitter > 0) await this.#wait(Math.random() * jitter * interval, Date.now() - minInterval);
    while (!signal.aborted) {
      const began = Date.now();
      let delay = jittered(interval, jitter, minInterval);
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
      }
      await this.#wait(delay, began);
    }
  }

  /** Sleeps `delay`, or less when the fetcher's hint fires, but never under minInterval since `began`. */
  async #wait(delay: number, began: number): Promise<void> {
    const { fetcher, minInterval } = this.#options;
    // Stopped while a poll ran: its abort event has passed, so no wait may start.
    if (this.#stop.signal.aborted) return;
    const waiting = new AbortController();
    const stop = () => waiting.abort();
    this.#stop.signal.addEventListener('abort', stop, { once: true });
    const wake = new AbortController();
    this.#wake = wake;
    try {
      const timer = sleep(delay, undefined, { signal: waiting.signal });
      const woken = new Promise<void>((resolve) => wake.signal.addEventListener('abort', () => resolve(), { once: true }))
        .then(() => sleep(Math.max(0, minInterval - (Date.now() - began)), undefined, { signal: waiting.signal }));
      if (this.#pollAgain) {
        this.#pollAgain = false;
        wake.abort();
      }
      const hint = fetcher.changed
        ? fetcher.changed(waiting.signal).then(() => sleep(Math.max(0, minInterval - (Date.now() - began)), undefined, { signal: waiting.signal }))
        : new Promise<never>(() => {});
      await Promise.race([timer, hint, woken]);
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
