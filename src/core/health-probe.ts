/**
 * The probation's health probe, for programs the master cannot see into (any executable under
 * `overseer run`, deploy apps): an HTTP GET on a path, through the listening socket the master
 * holds, so it reaches whichever child accepts there. A 2xx or 3xx answer passes; anything else
 * (another status, a refused or reset connection, no answer in time) is a failure, and
 * `failures` of them in a row fail the probation: a path that 404s from the start is a failed
 * probation, not a crash loop.
 */
import type { ListenerInfo } from '../protocol.js';

// Not an ESM import of node:http: on Node 22 and 24 that reads every export, and the lazy
// WebSocket getter loads Node's own undici, +10-14 MB RSS (docs/benchmarks.md §9 "Master memory").
const http = process.getBuiltinModule('node:http');

export interface ProbeTarget {
  readonly host?: string;
  readonly port?: number;
  readonly socketPath?: string;
}

/** Where to connect to reach a listener: the wildcard addresses are reached through loopback. */
export function probeTarget(info: ListenerInfo): ProbeTarget {
  const { address } = info;
  if (address.startsWith('unix:')) return { socketPath: address.slice('unix:'.length) };
  const colon = address.lastIndexOf(':');
  let host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  return { host, port: Number(address.slice(colon + 1)) };
}

/** One GET; resolves with undefined when it passed, else with what went wrong. */
export function probeOnce(target: ProbeTarget, path: string, timeout: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const request = http.request({ ...target, path, method: 'GET', agent: false, headers: { connection: 'close', 'user-agent': 'overseer-probe' } }, (response) => {
      const status = response.statusCode ?? 0;
      // Only the status counts; the body is read and dropped so the socket closes cleanly.
      response.resume();
      response.on('error', () => {});
      resolve(status >= 200 && status < 400 ? undefined : `GET ${path} answered ${status}`);
    });
    request.setTimeout(timeout, () => request.destroy(new Error(`GET ${path} had no answer within ${timeout} ms`)));
    request.on('error', (error) => resolve(error.message.startsWith('GET ') ? error.message : `GET ${path} failed: ${error.message}`));
    request.end();
  });
}

export interface HealthProbeOptions {
  readonly target: ProbeTarget;
  readonly path: string;
  readonly interval: number;
  readonly failures: number;
  readonly timeout: number;
  /** `failures` probes in a row failed; `last` is what the last one got. Called once. */
  readonly onFailed: (failures: number, last: string) => void;
}

export class HealthProbe {
  readonly #options: HealthProbeOptions;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #failures = 0;
  #last: string | undefined;

  constructor(options: HealthProbeOptions) {
    this.#options = options;
  }

  /** Consecutive failures so far, and what the last probe got. */
  get state(): { readonly failures: number; readonly last: string | undefined } {
    return { failures: this.#failures, last: this.#last };
  }

  start(): void {
    void this.#tick();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #tick(): Promise<void> {
    const { target, path, interval, failures, timeout, onFailed } = this.#options;
    const error = await probeOnce(target, path, timeout);
    if (this.#stopped) return;
    this.#last = error;
    this.#failures = error === undefined ? 0 : this.#failures + 1;
    if (error !== undefined && this.#failures >= failures) {
      this.stop();
      onFailed(this.#failures, error);
      return;
    }
    this.#timer = setTimeout(() => void this.#tick(), interval);
  }
}
