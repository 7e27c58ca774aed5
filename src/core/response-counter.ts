/**
 * In the child, while on probation only: counts the HTTP responses this process finishes, by
 * status class, with no app code. Node publishes every finished server response on the
 * diagnostics_channel `http.server.response.finish`; subscribing costs one call per response,
 * and unsubscribing when probation ends leaves no cost at all after it.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { ResponseCounts } from '../protocol.js';

const CHANNEL = 'http.server.response.finish';
/** Counts reach the master at most this often (and once more when counting stops). */
export const REPORT_EVERY_MS = 200;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export function emptyCounts(): Mutable<ResponseCounts> {
  return { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
}

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export class ResponseCounter {
  readonly #report: (counts: ResponseCounts) => void;
  #counts = emptyCounts();
  #changed = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #onFinish = (message: unknown): void => {
    const status = (message as { response?: { statusCode?: unknown } }).response?.statusCode;
    const index = typeof status === 'number' ? Math.floor(status / 100) - 1 : -1;
    const key = CLASSES[index];
    if (key === undefined) return;
    this.#counts[key] += 1;
    this.#changed = true;
  };

  constructor(report: (counts: ResponseCounts) => void) {
    this.#report = report;
  }

  get counting(): boolean {
    return this.#timer !== undefined;
  }

  start(): void {
    if (this.#timer) return;
    this.#counts = emptyCounts();
    diagnosticsChannel.subscribe(CHANNEL, this.#onFinish);
    this.#timer = setInterval(() => this.#flush(), REPORT_EVERY_MS).unref();
  }

  stop(): void {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    diagnosticsChannel.unsubscribe(CHANNEL, this.#onFinish);
    this.#flush();
  }

  #flush(): void {
    if (!this.#changed) return;
    this.#changed = false;
    this.#report({ ...this.#counts });
  }
}
