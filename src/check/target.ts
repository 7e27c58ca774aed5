/**
 * The program under check, running under a real master on a loopback port of its own: a run()
 * app (`node --import check/preload.js app.mjs`) or any command through `overseer run --events`,
 * the very code path of `overseer run`. Its lifecycle comes from the `overseer-event` lines on
 * the master's stderr; everything it starts is ended by stop().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { srcPath } from '../src-dir.js';
import type { OverseerEvent } from '../events.js';
import { EVENT_LINE_PREFIX } from '../protocol.js';
import { CHECK_MASTER_ENV, CONFIG_LINE_PREFIX, type MasterOverrides } from './preload.js';

/** A file of the built package: beside this one in dist/, or in dist/ when run from the sources (tests under tsx). */
export function builtFile(relative: string): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return fromSource ? path.join(srcPath('..'), 'dist/src', relative) : srcPath(relative);
}

export type TargetSpec =
  | {
    readonly kind: 'app';
    /** The run() app's entry script. */
    readonly script: string;
    readonly args?: readonly string[];
    readonly env?: Readonly<Record<string, string>>;
    readonly cwd?: string;
    readonly overrides: Omit<MasterOverrides, 'addresses'>;
  }
  | {
    readonly kind: 'command';
    /** `overseer run` flags (before `--`), listeners already on loopback port 0. */
    readonly runArgs: readonly string[];
    readonly command: readonly string[];
    readonly env?: Readonly<Record<string, string>>;
    readonly cwd?: string;
  };

type EventOf<T extends OverseerEvent['type']> = Extract<OverseerEvent, { type: T }>;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const OUTPUT_LINES = 40;

/** Masters still running when this process exits are killed (their children follow within ~2 s). */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const master of running) master.kill('SIGKILL');
});

export class Target {
  readonly events: OverseerEvent[] = [];
  /** The last lines the master and its children wrote (event lines left out). */
  readonly output: string[] = [];
  readonly exited: Promise<Exit>;
  readonly describe: string;
  /** A run() app's deadlines as its master runs them (its own, capped), once the preload said. */
  effective: { terminateTimeout: number; readyTimeout: number } | undefined;
  #exit: Exit | undefined;
  readonly #process: ChildProcess;
  readonly #waiters = new Set<() => void>();
  #partial = { stdout: '', stderr: '' };

  constructor(spec: TargetSpec) {
    const node = process.execPath;
    if (spec.kind === 'app') {
      const overrides: MasterOverrides = { ...spec.overrides, addresses: ['127.0.0.1:0'] };
      this.describe = path.basename(spec.script);
      this.#process = spawn(node, ['--import', builtFile('check/preload.js'), spec.script, ...(spec.args ?? [])], {
        cwd: spec.cwd ?? process.cwd(),
        env: { ...process.env, ...spec.env, [CHECK_MASTER_ENV]: JSON.stringify(overrides) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } else {
      this.describe = spec.command.join(' ');
      this.#process = spawn(node, [builtFile('cli/main.js'), 'run', ...spec.runArgs, '--events', '--', ...spec.command], {
        cwd: spec.cwd ?? process.cwd(),
        env: { ...process.env, ...spec.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    }
    this.#process.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.#read('stdout', chunk));
    this.#process.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.#read('stderr', chunk));
    running.add(this.#process);
    this.exited = new Promise((resolve) => {
      this.#process.once('exit', (code, signal) => {
        running.delete(this.#process);
        this.#exit = { code, signal };
        resolve(this.#exit);
        this.#wake();
      });
    });
    // A spawn error (no such node) ends like an exit.
    this.#process.once('error', (error) => this.output.push(`overseer check: ${error.message}`));
  }

  get pid(): number {
    return this.#process.pid ?? -1;
  }

  get exit(): Exit | undefined {
    return this.#exit;
  }

  /** Pids of the children the master forked and has not seen exit. */
  livePids(): number[] {
    const exited = new Set(this.events.flatMap((event) => (event.type === 'child-exited' ? [event.pid] : [])));
    return this.events.flatMap((event) => (event.type === 'child-forked' && !exited.has(event.pid) ? [event.pid] : []));
  }

  signal(signal: NodeJS.Signals): void {
    if (this.#exit === undefined) this.#process.kill(signal);
  }

  #read(stream: 'stdout' | 'stderr', chunk: string): void {
    const lines = (this.#partial[stream] + chunk).split('\n');
    this.#partial[stream] = lines.pop() ?? '';
    for (const line of lines) {
      if (stream === 'stderr' && line.startsWith(CONFIG_LINE_PREFIX)) {
        try {
          this.effective = JSON.parse(line.slice(CONFIG_LINE_PREFIX.length)) as { terminateTimeout: number; readyTimeout: number };
          continue;
        } catch {
          // kept as output
        }
      }
      if (stream === 'stderr' && line.startsWith(EVENT_LINE_PREFIX)) {
        try {
          this.events.push(JSON.parse(line.slice(EVENT_LINE_PREFIX.length)) as OverseerEvent);
          continue;
        } catch {
          // not one of ours after all: keep it as output
        }
      }
      this.output.push(line);
      if (this.output.length > OUTPUT_LINES) this.output.shift();
    }
    this.#wake();
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  /**
   * The first event of `type` (from index `from` on) that `predicate` accepts; undefined when
   * the master exits or `timeoutMs` passes first.
   */
  waitFor<T extends OverseerEvent['type']>(type: T | undefined, predicate: (event: EventOf<T>) => boolean = () => true, timeoutMs = 30_000, from = 0): Promise<EventOf<T> | undefined> {
    return new Promise((resolve) => {
      const find = () => this.events.slice(from).find((event): event is EventOf<T> => (type === undefined || event.type === type) && predicate(event as EventOf<T>));
      const done = (value: EventOf<T> | undefined) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(value);
      };
      const check = () => {
        const found = find();
        if (found) done(found);
        else if (this.#exit !== undefined) done(undefined);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /** The first event from index `from` on that `predicate` accepts; undefined when the master exits or `timeoutMs` passes first. */
  waitForEvent(predicate: (event: OverseerEvent) => boolean, timeoutMs: number, from = 0): Promise<OverseerEvent | undefined> {
    return this.waitFor(undefined, predicate, timeoutMs, from);
  }

  /** The first loopback address the master bound, from master-started. */
  async address(timeoutMs: number): Promise<{ host: string; port: number } | undefined> {
    const started = await this.waitFor('master-started', () => true, timeoutMs);
    const address = started?.addresses.find((each) => !each.startsWith('unix:'));
    if (address === undefined) return undefined;
    const at = address.lastIndexOf(':');
    const host = address.slice(0, at).replace(/^\[|\]$/g, '');
    return { host: host === '' || host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, port: Number(address.slice(at + 1)) };
  }

  /** Stops the master gracefully (SIGKILL after `graceMs`), then any child it left behind. */
  async stop(graceMs: number): Promise<Exit> {
    if (this.#exit === undefined) {
      this.#process.kill('SIGTERM');
      const timer = setTimeout(() => this.#process.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    // A master killed with SIGKILL takes its children along within about 2 s; make sure.
    for (const pid of this.livePids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    return this.exited;
  }
}

/** Starts the target; the caller must stop() it. */
export function startTarget(spec: TargetSpec): Target {
  if (spec.kind === 'app' && !fs.existsSync(spec.script)) throw new Error(`no such file: ${spec.script}`);
  return new Target(spec);
}
