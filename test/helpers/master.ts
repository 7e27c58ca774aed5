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
import { boundedExit } from './exit.ts';
import { scale } from './scale.ts';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const fixture = (name: string) => path.join(root, 'test/fixtures', name);

export { scale };

export interface RunningMaster {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly events: OverseerEvent[];
  readonly output: { stdout: string; stderr: string };
  /** The first bound address as host:port (or the unix path). */
  readonly address: string;
  readonly port: number;
  waitFor<T extends OverseerEvent['type']>(type: T, predicate?: (event: Extract<OverseerEvent, { type: T }>) => boolean, timeoutMs?: number): Promise<Extract<OverseerEvent, { type: T }>>;
  /** Its exit; a wait on it fails after EXIT_DEADLINE_MS (scaled) with the master's report. */
  readonly exited: PromiseLike<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Pids of children that reported ready. */
  readyPids(): Set<number>;
  /**
   * What a failing test prints: every event with the time it happened in the master and the
   * time it reached the test (a gap is a starved master or test), and the tail of its stderr.
   */
  report(): string;
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
  const received = new WeakMap<OverseerEvent, number>();
  const output = { stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const waiters = new Set<() => void>();
  child.on('message', (message: { event?: OverseerEvent }) => {
    if (!message.event) return;
    received.set(message.event, Date.now());
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
        reject(new Error(`no ${type} event within ${timeoutMs * scale} ms\n${report()}`));
      }, timeoutMs * scale);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  };

  const report = (): string => describeMaster(child, events, received, output);
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
    exited: boundedExit(child, exited, 'master', report),
    readyPids: () => new Set(events.flatMap((event) => (event.type === 'child-ready' ? [event.pid] : []))),
    report,
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

/** UTC time of day with ms, as support/release-server.ts's log prints it, so the two line up. */
export const clock = (at: number): string => new Date(at).toISOString().slice(11, 23);

/** How many lines of a master's stderr a report keeps. */
const STDERR_TAIL_LINES = 60;

function describeMaster(child: ChildProcess, events: readonly OverseerEvent[], received: WeakMap<OverseerEvent, number>, output: { stdout: string; stderr: string }): string {
  const state = child.exitCode !== null || child.signalCode !== null ? `exited (${child.signalCode ?? `code ${child.exitCode}`})` : 'running';
  const lines = events.map((event) => {
    const { type, at, ...rest } = event as OverseerEvent & { at?: number };
    const arrived = received.get(event);
    const lag = at !== undefined && arrived !== undefined ? ` (reached the test +${arrived - at}ms)` : '';
    return `  ${at === undefined ? '?' : clock(at)} ${type} ${JSON.stringify(rest)}${lag}`;
  });
  const stderr = output.stderr.trimEnd().split('\n');
  const tail = stderr.length > STDERR_TAIL_LINES ? [`  … ${stderr.length - STDERR_TAIL_LINES} earlier lines`, ...stderr.slice(-STDERR_TAIL_LINES)] : stderr;
  return [`master ${child.pid} (${state}), now ${clock(Date.now())}; its events:`, ...lines, `its stderr${output.stderr === '' ? ': (none)' : ':'}`, ...(output.stderr === '' ? [] : tail.map((line) => `  ${line}`))].join('\n');
}

/**
 * Polls `check` until it returns a value other than undefined, or fails at the deadline; the
 * error then carries `explain()` (a master's report, a server's request log).
 */
export async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000, explain?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs * scale;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${timeoutMs * scale} ms)${explain === undefined ? '' : `\n${explain()}`}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Runs a test's body; an error it ends with (a failed assertion, a waitFor or until deadline)
 * gets the master's report (unless waitFor already gave it) and `more` (a release server's
 * request log, say) appended, so a failure under load leaves what is needed to find its cause.
 */
export async function explained<T>(master: RunningMaster, more: () => string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof Error && !error.message.includes(EXPLAINED)) {
      const report = error.message.includes(`master ${master.pid} (`) ? '' : `\n${master.report()}`;
      error.message += `\n${EXPLAINED}${report}\n${more()}`;
    }
    throw error;
  }
}
const EXPLAINED = '--- what the test saw ---';

/** True while a process with this pid exists. */
export { isAlive } from '../../support/process.ts';
