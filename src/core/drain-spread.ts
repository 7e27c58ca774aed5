/**
 * When each keep-alive connection of a draining child is told to close. Closing them all at
 * once sends every client to the new child in the same moment, while its code is still cold;
 * spreading the closes over a window lets the new child warm up on a trickle of reconnects
 * while the old one carries the rest.
 */

/** `drainSpread: 'auto'`: at least this window, in ms… */
export const AUTO_SPREAD_MIN_MS = 500;
/**
 * …and this much per open connection, so reconnects reach the new child at about 250 a second
 * however many there are. Measured with 500 busy keep-alive connections (docs/benchmarks.md,
 * "Handoff latency"): 1 ms each still raised the mean latency 1.75–2.5×, 4 ms kept it within 1.1×.
 */
export const AUTO_SPREAD_PER_CONNECTION_MS = 4;

/**
 * On a handoff the old child keeps accepting for this long (never past the window) before it
 * closes its listener: new connections then split between it and the new child while the new one
 * warms, instead of all landing on cold code at once. Without keep-alive every request is a new
 * connection, so this is what spreads them; measured in docs/benchmarks.md ("Handoff latency").
 */
export const LISTENER_HOLD_MS = 250;

export type DrainSpread = number | 'auto';

/**
 * The window, in ms, over which `connections` are closed: the configured one ('auto': 500 ms,
 * or 4 ms per connection when there are more than 125), never more than half of what remains
 * before the deadline, so the last connections still have time to finish.
 */
export function spreadWindow(spread: DrainSpread, connections: number, remainingMs: number): number {
  const wanted = spread === 'auto' ? Math.max(AUTO_SPREAD_MIN_MS, connections * AUTO_SPREAD_PER_CONNECTION_MS) : spread;
  return Math.max(0, Math.min(wanted, Math.floor(remainingMs / 2)));
}

/** How long the listener stays open into a drain with this window: 0 without a spread. */
export function listenerHold(window: number): number {
  return Math.min(LISTENER_HOLD_MS, window);
}

/**
 * Hands out close times: the k-th connection to ask (of `connections` open when the drain
 * began) is due at start + window × k / connections, so the first closes at once and the last
 * a slot before the window ends. Connections are keyed by the socket their requests arrive on;
 * a key asks once and keeps its time.
 */
export class SpreadSchedule<Key extends object = object> {
  readonly start: number;
  readonly window: number;
  readonly #slots: number;
  readonly #due = new WeakMap<Key, number>();
  #given = 0;

  constructor(start: number, window: number, connections: number) {
    this.start = start;
    this.window = window;
    this.#slots = Math.max(1, connections);
  }

  /** When `key` is due to close (epoch ms). */
  dueAt(key: Key): number {
    let due = this.#due.get(key);
    if (due === undefined) {
      // More keys than slots (a connection the count missed): due at the window's end.
      due = this.start + (this.window * Math.min(this.#given, this.#slots)) / this.#slots;
      this.#given++;
      this.#due.set(key, due);
    }
    return due;
  }

  /** True once `key` should be told to close (its response carries `Connection: close`). */
  isDue(key: Key, now = Date.now()): boolean {
    return now >= this.dueAt(key);
  }

  /**
   * When idle connections may be swept: `grace` ms after the last connection became due. Each
   * then had that long to send one more request and hear `Connection: close` politely; a sweep
   * closes a connection the client may be reusing at that very moment (a reset), so it comes
   * only once a busy client has had its chance. With one connection or no window: `grace`.
   */
  sweepAt(grace: number): number {
    return this.start + (this.window * (this.#slots - 1)) / this.#slots + grace;
  }
}
