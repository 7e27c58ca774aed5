/**
 * One run of a supervised command: spawned detached as the leader of its own process group, its
 * stdout and stderr read line by line, signals sent to the whole group. Every live group is
 * SIGKILLed when this process exits, or dies of a signal it leaves to Node's default action;
 * one set of process listeners serves all supervisors.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { OverseerError } from '../errors.js';

export type LogStream = 'stdout' | 'stderr';

export type RunOutcome =
  | { readonly type: 'spawn-failed'; readonly error: OverseerError }
  | { readonly type: 'exited'; readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly at: number };

export interface CommandRun {
  /** Undefined when the command could not be started. */
  readonly pid: number | undefined;
  /** Settles once the process exited and its output was read to the end; never rejects. */
  readonly outcome: Promise<RunOutcome>;
  /** Sends `signal` to the process group; false when the group is gone. */
  signal(signal: NodeJS.Signals): boolean;
}

export interface CommandSpec {
  readonly id: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly shell: boolean | string;
  readonly onSpawn: () => void;
  readonly onLine: (stream: LogStream, text: string) => void;
}

/**
 * How long output may keep flowing after the leader exited. The rest of the group is killed at
 * that moment, so pipes close at once unless a process escaped the group and still holds them.
 */
const OUTPUT_GRACE_MS = 2000;

/**
 * Signals whose default action ends this process without running 'exit' listeners. The groups
 * are in sessions of their own, so a terminal's Ctrl-C or hangup never reaches them either.
 */
const DEATH_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const satisfies readonly NodeJS.Signals[];

const liveGroups = new Set<number>();

function killLiveGroups(): void {
  for (const pgid of liveGroups) signalGroup(pgid, 'SIGKILL');
}

/**
 * Listening to a signal cancels Node's default action, so this listener only stands in for it:
 * when no one else listens, it kills the groups and raises the signal again without itself.
 * When the program has its own listener, that one decides (and process.exit() runs the hook).
 */
function onDeathSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  killLiveGroups();
  removeProcessListeners();
  process.kill(process.pid, signal);
}

function removeProcessListeners(): void {
  process.off('exit', killLiveGroups);
  for (const signal of DEATH_SIGNALS) process.off(signal, onDeathSignal);
}

function track(pgid: number): void {
  if (liveGroups.size === 0) {
    process.on('exit', killLiveGroups);
    for (const signal of DEATH_SIGNALS) process.on(signal, onDeathSignal);
  }
  liveGroups.add(pgid);
}

function untrack(pgid: number): void {
  if (liveGroups.delete(pgid) && liveGroups.size === 0) removeProcessListeners();
}

function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Starts the command. Never throws: a failure to start is the run's outcome. */
export function startCommand(spec: CommandSpec): CommandRun {
  let child: ChildProcess;
  try {
    child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      shell: spec.shell,
      // Its own session and process group: signals reach its children too, and a Ctrl-C in
      // the supervisor's terminal does not reach it behind the supervisor's back.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    return { pid: undefined, outcome: Promise.resolve({ type: 'spawn-failed', error: spawnError(spec, error) }), signal: () => false };
  }
  const { pid } = child;
  if (pid !== undefined) track(pid);
  const outputDone = Promise.all([readLines(child.stdout, 'stdout', spec), readLines(child.stderr, 'stderr', spec)]);

  const outcome = new Promise<RunOutcome>((resolve) => {
    let spawned = false;
    child.once('spawn', () => {
      spawned = true;
      spec.onSpawn();
    });
    child.on('error', (error) => {
      // After the spawn, 'error' only reports a failed kill(); the exit still follows.
      if (!spawned) resolve({ type: 'spawn-failed', error: spawnError(spec, error) });
    });
    child.once('exit', (code, signal) => {
      const at = Date.now();
      if (pid !== undefined) {
        // The leader is gone: end what it left behind in its group, so a retry never races a
        // stray grandchild (systemd's KillMode=control-group does the same).
        signalGroup(pid, 'SIGKILL');
        untrack(pid);
      }
      const grace = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, OUTPUT_GRACE_MS);
      void outputDone.then(() => {
        clearTimeout(grace);
        resolve({ type: 'exited', code, signal, at });
      });
    });
  });

  return {
    pid,
    outcome,
    signal: (signal) => pid !== undefined && liveGroups.has(pid) && signalGroup(pid, signal),
  };
}

/** Emits each line of `stream` (the last one even without a newline); resolves when it closed. */
function readLines(stream: Readable | null, name: LogStream, spec: CommandSpec): Promise<void> {
  if (stream === null) return Promise.resolve();
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  lines.on('line', (text) => spec.onLine(name, text));
  return new Promise((resolve) => lines.once('close', resolve));
}

function spawnError(spec: CommandSpec, cause: unknown): OverseerError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  let why = code === undefined ? String(cause) : code;
  if (spec.cwd !== undefined && code === 'ENOENT' && !fs.existsSync(spec.cwd)) why = `its cwd ${JSON.stringify(spec.cwd)} does not exist`;
  else if (code === 'ENOENT') why = 'no such executable (check the command and PATH)';
  else if (code === 'EACCES') why = 'permission denied (is the file executable?)';
  return new OverseerError('ERR_OVERSEER_SPAWN_FAILED', `process ${JSON.stringify(spec.id)} could not start ${JSON.stringify(spec.command)}: ${why}`, {
    subject: spec.id,
    cause,
  });
}
