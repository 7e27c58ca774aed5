/**
 * Respawn after a crash of the serving child: exponential backoff from minDelay up to maxDelay,
 * and a crash-loop limit (more than maxCrashes within window), after which the master gives up.
 */
import type { RespawnOptions } from './config.js';
import type { EventBody, Log } from '../events.js';

export interface RespawnerOptions {
  readonly limits: Required<RespawnOptions>;
  readonly log: Log;
  readonly emit: (event: EventBody) => void;
  /** Starts the replacement child, once the backoff has passed. */
  readonly respawn: () => void;
}

export class Respawner {
  readonly #options: RespawnerOptions;
  /** When the crashes within the window happened, oldest first. */
  readonly #crashes: number[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RespawnerOptions) {
    this.#options = options;
  }

  /**
   * Counts a crash and schedules the respawn (emitting respawn-scheduled). Returns false, and
   * schedules nothing, when the crash-loop limit is passed: the master gives up then.
   */
  crashed(): boolean {
    const { limits, log, emit } = this.#options;
    const now = Date.now();
    this.#crashes.push(now);
    while (this.#crashes.length > 0 && (this.#crashes[0] ?? now) <= now - limits.window) this.#crashes.shift();
    if (this.#crashes.length > limits.maxCrashes) {
      log.warn(`child crashed ${this.#crashes.length} times within ${limits.window} ms; giving up (respawn.maxCrashes ${limits.maxCrashes})`);
      return false;
    }
    const delay = Math.min(limits.maxDelay, limits.minDelay * 2 ** (this.#crashes.length - 1));
    emit({ type: 'respawn-scheduled', delayMs: delay, crashes: this.#crashes.length });
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#options.respawn();
    }, delay);
    return true;
  }

  /** Drops a pending respawn (the master is shutting down). */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
