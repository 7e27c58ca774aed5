/**
 * Starts a fixture under a real master and follows its lifecycle: every onEvent of the master
 * reaches the test over IPC, so tests wait on events instead of sleeping.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OverseerEvent } from '../../src/events.ts';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const fixture = (name: string) => path.join(root, 'test/fixtures', name);

/** Deadlines scale with OVERSEER_TEST_TIMEOUT_SCALE on slow machines. */
export const scale = Number(process.env.OVERSEER_TEST_TIMEOUT_SCALE ?? 1);

export interface RunningMaster {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly events: OverseerEvent[];
  readonly output: { stdout: string; stderr: string };
  /** The first bound address as host:port (or the unix path). */
  readonly address: string;
  readonly port: number;
  waitFor<T extends OverseerEvent['type']>(type: T, predicate?: (event: Extract<OverseerEvent, { type: T }>) => boolean, timeoutMs?: number): Promise<Extract<OverseerEvent, { type: T }>>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Pids of children that reported ready. */
  readyPids(): Set<number>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function tempDir(prefix = 'overseer-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface StartOptions {
  readonly env?: Record<string, string | undefined>;
  readonly args?: readonly string[];
  readonly execArgv?: readonly string[];
  /** Resolve without waiting for the first child to be ready. */
  readonly noWait?: boolean;
  readonly cwd?: string;
  /** `script` is an executable (a single executable application) run as it is, not by node. */
  readonly executable?: boolean;
}

export async function startMaster(script: string, options: StartOptions = {}): Promise<RunningMaster> {
  const [command, args] = options.executable
    ? [script, [...(options.args ?? [])]]
    : [process.execPath, [...(options.execArgv ?? []), script, ...(options.args ?? [])]];
  const child = spawn(command, args, {
    cwd: options.cwd ?? root,
    env: { ...process.env, NODE_OPTIONS: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  running.add(child);
  const events: OverseerEvent[] = [];
  const output = { stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const waiters = new Set<() => void>();
  child.on('message', (message: { event?: OverseerEvent }) => {
    if (!message.event) return;
    events.push(message.event);
    for (const waiter of waiters) waiter();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
      for (const waiter of waiters) waiter();
    });
  });

  const waitFor: RunningMaster['waitFor'] = (type, predicate, timeoutMs = 15_000) => {
    type E = Extract<OverseerEvent, { type: typeof type }>;
    const find = () => events.find((event): event is E => event.type === type && (!predicate || predicate(event as E)));
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found) {
          cleanup();
          resolve(found);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          cleanup();
          const ending = child.signalCode ?? `code ${child.exitCode}`;
          const seen = events.map((event) => `${event.type}${'pid' in event ? `:${event.pid}` : ''}`).join(' ');
          reject(new Error(`master exited (${ending}) before ${type}; events: ${seen}\nstderr:\n${output.stderr}\nstdout:\n${output.stdout}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${type} event within ${timeoutMs * scale} ms; events: ${events.map((e) => e.type).join(', ')}\nstderr:\n${output.stderr}`));
      }, timeoutMs * scale);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  };

  const started = await waitFor('master-started');
  const address = started.addresses[0] ?? '';
  if (!options.noWait) await waitFor('child-ready');
  return {
    process: child,
    pid: child.pid ?? -1,
    events,
    output,
    address,
    port: Number(address.slice(address.lastIndexOf(':') + 1)),
    waitFor,
    exited,
    readyPids: () => new Set(events.flatMap((event) => (event.type === 'child-ready' ? [event.pid] : []))),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000 * scale);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** Polls `check` until it returns a value other than undefined, or fails at the deadline. */
export async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs * scale;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** True while a process with this pid exists. */
export { isAlive } from '../../support/process.ts';
