/**
 * A bounded closed-loop HTTP load client for tests and benchmarks: `concurrency` loops, each
 * sending a request as soon as the previous one is answered, until stopped, `maxMs` passes or
 * `maxRequests` have been sent. Every answer and every failure is recorded.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { RunningMaster } from './master.ts';

export interface Answer {
  readonly pid: number;
  readonly version: string | null;
  readonly sentAt: number;
  readonly at: number;
}

export interface Failure {
  readonly kind: 'refused' | 'reset' | 'timeout' | 'status' | 'other';
  readonly detail: string;
  readonly at: number;
}

export interface LoadResult {
  readonly answers: Answer[];
  readonly failures: Failure[];
}

export interface LoadOptions {
  readonly port?: number;
  readonly host?: string;
  readonly socketPath?: string;
  readonly path?: string;
  readonly keepAlive: boolean;
  readonly concurrency?: number;
  readonly maxMs?: number;
  readonly maxRequests?: number;
  readonly timeoutMs?: number;
  /** Speak https, trusting this CA certificate. */
  readonly ca?: Buffer;
}

function classify(error: NodeJS.ErrnoException): Failure['kind'] {
  if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') return 'refused';
  if (error.code === 'ECONNRESET' || error.code === 'EPIPE' || error.message === 'socket hang up') return 'reset';
  if (error.code === 'ETIMEDOUT') return 'timeout';
  return 'other';
}

export class Load {
  readonly result: LoadResult = { answers: [], failures: [] };
  readonly done: Promise<LoadResult>;
  #stopped = false;
  #sent = 0;
  readonly #agent: http.Agent;

  constructor(readonly options: LoadOptions) {
    const agentOptions = { keepAlive: options.keepAlive, maxSockets: options.concurrency ?? 8 };
    this.#agent = options.ca ? new https.Agent({ ...agentOptions, ca: options.ca }) : new http.Agent(agentOptions);
    const maxMs = options.maxMs ?? 60_000;
    const timer = setTimeout(() => this.stop(), maxMs);
    const loops = Array.from({ length: options.concurrency ?? 8 }, () => this.#loop());
    this.done = Promise.all(loops).then(() => {
      clearTimeout(timer);
      this.#agent.destroy();
      return this.result;
    });
  }

  get sent(): number {
    return this.#sent;
  }

  stop(): Promise<LoadResult> {
    this.#stopped = true;
    return this.done;
  }

  async #loop(): Promise<void> {
    while (!this.#stopped && this.#sent < (this.options.maxRequests ?? Infinity)) {
      this.#sent++;
      await this.#once();
    }
  }

  #once(): Promise<void> {
    const sentAt = Date.now();
    return new Promise((resolve) => {
      const request = (this.options.ca ? https : http).request({
        agent: this.#agent,
        path: this.options.path ?? '/',
        ...(this.options.socketPath ? { socketPath: this.options.socketPath } : { host: this.options.host ?? '127.0.0.1', port: this.options.port }),
        timeout: this.options.timeoutMs ?? 10_000,
      }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => {
          const at = Date.now();
          if (response.statusCode !== 200) {
            this.result.failures.push({ kind: 'status', detail: `${response.statusCode} ${body}`, at });
          } else {
            try {
              const parsed = JSON.parse(body) as { pid: number; version: string | null };
              this.result.answers.push({ pid: parsed.pid, version: parsed.version, sentAt, at });
            } catch {
              this.result.failures.push({ kind: 'other', detail: `unparsable body ${JSON.stringify(body)}`, at });
            }
          }
          resolve();
        });
        response.on('error', (error: NodeJS.ErrnoException) => {
          this.result.failures.push({ kind: classify(error), detail: `${error.code ?? ''} ${error.message}`, at: Date.now() });
          resolve();
        });
      });
      request.on('timeout', () => request.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
      request.on('error', (error: NodeJS.ErrnoException) => {
        this.result.failures.push({ kind: classify(error), detail: `${error.code ?? ''} ${error.message}`, at: Date.now() });
        resolve();
      });
      request.end();
    });
  }
}

/** One GET, answered or failed, for quick probes. */
export async function ask(port: number, host = '127.0.0.1', path = '/'): Promise<{ pid: number; id: string; version: string | null }> {
  const response = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`);
  return (await response.json()) as { pid: number; id: string; version: string | null };
}

/**
 * Two SIGUSR2 handoffs while `options` load runs against the master: no request fails, answers
 * come from at least two of the three children, and every old child drained well before
 * terminateTimeout. The second hands off from a child that was itself handed the sockets.
 */
export async function assertHandsOffUnderLoad(master: RunningMaster, options: Omit<LoadOptions, 'port'>): Promise<void> {
  const load = new Load({ ...options, port: master.port });
  for (let round = 1; round <= 2; round++) {
    master.process.kill('SIGUSR2');
    await master.waitFor('handoff-completed', () => master.events.filter((event) => event.type === 'handoff-completed').length >= round);
  }
  const result = await load.stop();
  assert.deepEqual(result.failures, []);
  const pids = new Set(result.answers.map((answer) => answer.pid));
  assert.ok(pids.size >= 2, `answers from ${pids.size} children`);
  for (const event of master.events) {
    if (event.type === 'handoff-completed') assert.ok(event.timings.drainMs < 10_000, `drain took ${event.timings.drainMs} ms`);
  }
}
