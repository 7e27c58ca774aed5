/**
 * Supervisor (published as `overseer/supervisor`): runs commands as supervised processes in the
 * model of ShinyTrinkets' overseer. Each runs in its own process group, is started again after
 * a failure with backoff, and reports its state changes and output lines as events and as async
 * iterables. Supervisors in one process share nothing but the exit hook that kills live groups.
 * One job, kept whole on purpose: the process table and the loop that moves each entry through
 * its states read best side by side (its shapes are in types.ts, spawning in spawn.ts).
 */
import { EventEmitter, on } from 'node:events';
import { OverseerError } from '../errors.js';
import { checkCommand, isSignalName, normalizeProcessOptions, retryDelayFor, type ProcessOptions, type ResolvedProcessOptions } from './options.js';
import { startCommand, type CommandRun, type RunOutcome } from './spawn.js';
import type { IterateOptions, LogLine, ProcessState, ProcessStatus, StateChange, StopOptions, SupervisorEvents } from './types.js';

export { PROCESS_DEFAULTS, type ProcessOptions } from './options.js';
export type { LogStream } from './spawn.js';

export type {
  IterateOptions, LogLine, ProcessState, ProcessStatus, StateChange, StopOptions, SupervisorEvents,
} from './types.js';

interface Entry {
  readonly id: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly options: ResolvedProcessOptions;
  state: ProcessState;
  pid: number | null;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  error: OverseerError | null;
  startedAt: number | null;
  stoppedAt: number | null;
  attempts: number;
  retryAt: number | null;
  lastStderr: string | undefined;
  run: CommandRun | undefined;
  /** The last signal() sent to the current process: an exit by it counts as interrupted. */
  sentSignal: NodeJS.Signals | undefined;
  stopRequested: boolean;
  killRequested: boolean;
  killTimer: NodeJS.Timeout | undefined;
  /** Ends a backoff wait early. */
  wake: (() => void) | undefined;
  done: Promise<ProcessStatus> | undefined;
}

const ACTIVE: ReadonlySet<ProcessState> = new Set(['starting', 'running', 'stopping', 'backoff']);

/**
 * A set of supervised processes. Emits 'state' (StateChange) and 'log' (LogLine); states() and
 * logs() give the same as async iterables. Methods that return a promise reject on a bad call,
 * the others throw; a process that fails is never an exception, its status says `fatal`.
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly #entries = new Map<string, Entry>();

  constructor() {
    if (process.platform === 'win32') {
      throw new OverseerError('ERR_OVERSEER_UNSUPPORTED', 'Supervisor needs POSIX process groups, which Windows does not have');
    }
    super();
  }

  /** Registers a process without starting it. Throws ERR_OVERSEER_PROCESS_EXISTS for a used id. */
  add(id: string, command: string, args: readonly string[] = [], options: ProcessOptions = {}): this {
    if (typeof id !== 'string' || id === '') throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `supervisor.add() id must be a non-empty string; got ${String(id)}`);
    const subject = `supervisor.add(${JSON.stringify(id)})`;
    checkCommand(subject, command, args);
    const resolved = normalizeProcessOptions(subject, options);
    if (this.#entries.has(id)) {
      throw new OverseerError('ERR_OVERSEER_PROCESS_EXISTS', `a process with id ${JSON.stringify(id)} was already added; remove() it first or pick another id`, { subject: id });
    }
    this.#entries.set(id, {
      id,
      command,
      args: Object.freeze([...args]),
      options: resolved,
      state: 'idle',
      pid: null,
      exitCode: null,
      signal: null,
      error: null,
      startedAt: null,
      stoppedAt: null,
      attempts: 0,
      retryAt: null,
      lastStderr: undefined,
      run: undefined,
      sentSignal: undefined,
      stopRequested: false,
      killRequested: false,
      killTimer: undefined,
      wake: undefined,
      done: undefined,
    });
    return this;
  }

  /** Unregisters a process that is idle or ended. Throws ERR_OVERSEER_PROCESS_RUNNING otherwise. */
  remove(id: string): void {
    const entry = this.#get(id);
    if (ACTIVE.has(entry.state)) {
      throw new OverseerError('ERR_OVERSEER_PROCESS_RUNNING', `process ${JSON.stringify(id)} is ${entry.state}; stop() it before remove()`, { subject: id });
    }
    this.#entries.delete(id);
  }

  /** The ids of all added processes, in the order they were added. */
  ids(): string[] {
    return [...this.#entries.keys()];
  }

  status(id: string): ProcessStatus {
    return snapshot(this.#get(id));
  }

  /**
   * Starts the process and keeps it going: a failed process (exit code ≠ 0, or killed by a
   * signal we did not send) is started again up to `retries` times. Resolves with the final
   * status once the process is finished, interrupted or fatal. Works again after that.
   */
  async supervise(id: string): Promise<ProcessStatus> {
    const entry = this.#get(id);
    if (ACTIVE.has(entry.state)) {
      throw new OverseerError('ERR_OVERSEER_PROCESS_RUNNING', `process ${JSON.stringify(id)} is already supervised (${entry.state})`, { subject: id });
    }
    entry.done = this.#superviseLoop(entry);
    return entry.done;
  }

  /** supervise() for every process not already supervised; resolves with every final status. */
  async superviseAll(): Promise<ProcessStatus[]> {
    const entries = [...this.#entries.values()];
    return Promise.all(entries.map((entry) => (ACTIVE.has(entry.state) && entry.done ? entry.done : this.supervise(entry.id))));
  }

  /**
   * Stops the process: stopSignal to its group, SIGKILL after stopTimeout (or SIGKILL at once
   * with `kill`). A process waiting to retry is not started again. Resolves with the final
   * status (interrupted); for a process that is not supervised, with its status as it is.
   */
  async stop(id: string, options: StopOptions = {}): Promise<ProcessStatus> {
    const entry = this.#get(id);
    this.#requestStop(entry, options.kill === true);
    return ACTIVE.has(entry.state) && entry.done ? entry.done : snapshot(entry);
  }

  /** stop() for every process; resolves with every final status. */
  async stopAll(options: StopOptions = {}): Promise<ProcessStatus[]> {
    return Promise.all(this.ids().map((id) => this.stop(id, options)));
  }

  /**
   * Sends `signal` to the process's group. The process keeps being supervised; if that very
   * signal ends it, it counts as interrupted, not as a failure. Throws
   * ERR_OVERSEER_PROCESS_NOT_RUNNING when no process of this id is alive.
   */
  signal(id: string, signal: NodeJS.Signals): void {
    const entry = this.#get(id);
    if (!isSignalName(signal)) {
      throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `supervisor.signal() needs a signal name such as "SIGHUP"; got ${JSON.stringify(signal)}`, { subject: id });
    }
    const run = entry.run;
    if (run === undefined || !run.signal(signal)) {
      throw new OverseerError('ERR_OVERSEER_PROCESS_NOT_RUNNING', `process ${JSON.stringify(id)} has no live process to signal (it is ${entry.state})`, { subject: id });
    }
    entry.sentSignal = signal;
  }

  /**
   * State changes as an async iterable, from this call on (buffered until read). Iterate it to
   * the end of a `for await` (break, or abort options.signal), or it buffers forever.
   */
  states(options: IterateOptions = {}): AsyncIterableIterator<StateChange> {
    return this.#iterate('state', options);
  }

  /** Output lines as an async iterable, from this call on; the same contract as states(). */
  logs(options: IterateOptions = {}): AsyncIterableIterator<LogLine> {
    return this.#iterate('log', options);
  }

  #iterate<T extends { readonly id: string }>(event: keyof SupervisorEvents, options: IterateOptions): AsyncIterableIterator<T> {
    const { id, signal } = options;
    if (id !== undefined) this.#get(id);
    const finished: IteratorReturnResult<undefined> = { done: true, value: undefined };
    if (signal?.aborted) {
      return { next: async () => finished, return: async () => finished, [Symbol.asyncIterator]() { return this; } };
    }
    // Subscribed now, not at the first next(): a state emitted right after this call is kept.
    const source = on(this, event, signal === undefined ? {} : { signal }) as AsyncIterableIterator<[T]>;
    return {
      async next() {
        for (;;) {
          let result: IteratorResult<[T]>;
          try {
            result = await source.next();
          } catch (error) {
            if (signal?.aborted) return finished;
            throw error;
          }
          if (result.done === true) return finished;
          const [value] = result.value;
          if (id === undefined || value.id === id) return { done: false, value };
        }
      },
      async return() {
        await source.return?.();
        return finished;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  #get(id: string): Entry {
    const entry = this.#entries.get(id);
    if (entry === undefined) {
      const known = this.ids();
      throw new OverseerError(
        'ERR_OVERSEER_UNKNOWN_PROCESS',
        `no process with id ${JSON.stringify(id)}; ${known.length === 0 ? 'none was added' : `the ids are ${known.map((each) => JSON.stringify(each)).join(', ')}`}`,
        { subject: String(id) },
      );
    }
    return entry;
  }

  async #superviseLoop(entry: Entry): Promise<ProcessStatus> {
    Object.assign(entry, { attempts: 0, error: null, stopRequested: false, killRequested: false, retryAt: null });
    let failures = 0;
    for (;;) {
      const outcome = await this.#runOnce(entry);
      if (outcome.type === 'spawn-failed') {
        entry.error = outcome.error;
        return this.#end(entry, 'fatal');
      }
      if (entry.stopRequested || (outcome.signal !== null && outcome.signal === entry.sentSignal)) return this.#end(entry, 'interrupted');
      if (outcome.code === 0) return this.#end(entry, 'finished');
      failures += 1;
      if (failures > entry.options.retries) {
        entry.error = failedError(entry, outcome);
        return this.#end(entry, 'fatal');
      }
      const delay = retryDelayFor(entry.options, failures);
      const now = Date.now();
      entry.retryAt = now + delay;
      this.#setState(entry, 'backoff', now);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        entry.wake = () => {
          clearTimeout(timer);
          resolve();
        };
        // A 'state' listener may have called stop() while 'backoff' was emitted.
        if (entry.stopRequested) entry.wake();
      });
      entry.wake = undefined;
      entry.retryAt = null;
      if (entry.stopRequested) return this.#end(entry, 'interrupted');
    }
  }

  async #runOnce(entry: Entry): Promise<RunOutcome> {
    Object.assign(entry, { pid: null, exitCode: null, signal: null, stoppedAt: null, startedAt: Date.now(), sentSignal: undefined, lastStderr: undefined });
    entry.attempts += 1;
    this.#setState(entry, 'starting');
    const run = startCommand({
      id: entry.id,
      command: entry.command,
      args: entry.args,
      cwd: entry.options.cwd,
      env: entry.options.env,
      shell: entry.options.shell,
      onSpawn: () => {
        if (entry.state === 'starting') this.#setState(entry, 'running');
      },
      onLine: (stream, text) => {
        if (stream === 'stderr') entry.lastStderr = text;
        this.#emit('log', { id: entry.id, pid: run.pid ?? 0, stream, text, timestamp: Date.now() });
      },
    });
    entry.run = run;
    entry.pid = run.pid ?? null;
    // A 'state' listener may have called stop() while 'starting' was emitted.
    if (entry.stopRequested) this.#signalStop(entry, run);
    const outcome = await run.outcome;
    entry.run = undefined;
    clearTimeout(entry.killTimer);
    entry.killTimer = undefined;
    entry.stoppedAt = outcome.type === 'exited' ? outcome.at : Date.now();
    if (outcome.type === 'exited') {
      entry.exitCode = outcome.code;
      entry.signal = outcome.signal;
    }
    return outcome;
  }

  #requestStop(entry: Entry, kill: boolean): void {
    if (!ACTIVE.has(entry.state)) return;
    entry.stopRequested = true;
    entry.killRequested ||= kill;
    if (entry.state === 'backoff') {
      entry.wake?.();
      return;
    }
    if (entry.state !== 'stopping') this.#setState(entry, 'stopping');
    if (entry.run !== undefined) this.#signalStop(entry, entry.run);
  }

  #signalStop(entry: Entry, run: CommandRun): void {
    if (entry.killRequested) {
      run.signal('SIGKILL');
    } else if (entry.killTimer === undefined) {
      run.signal(entry.options.stopSignal);
      entry.killTimer = setTimeout(() => run.signal('SIGKILL'), entry.options.stopTimeout);
    }
  }

  #end(entry: Entry, state: 'finished' | 'interrupted' | 'fatal'): ProcessStatus {
    this.#setState(entry, state);
    return snapshot(entry);
  }

  #setState(entry: Entry, state: ProcessState, timestamp = Date.now()): void {
    const previous = entry.state;
    entry.state = state;
    this.#emit('state', { id: entry.id, state, previous, timestamp, status: snapshot(entry) });
  }

  /** A listener that throws must not break the state machine: its error is rethrown apart. */
  #emit<K extends keyof SupervisorEvents>(event: K, ...args: SupervisorEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: SupervisorEvents[K]) => boolean)(event, ...args);
    } catch (error) {
      process.nextTick(() => {
        throw error;
      });
    }
  }
}

function snapshot(entry: Entry): ProcessStatus {
  const end = entry.stoppedAt ?? Date.now();
  return Object.freeze({
    id: entry.id,
    command: entry.command,
    args: entry.args,
    state: entry.state,
    pid: entry.pid,
    exitCode: entry.exitCode,
    signal: entry.signal,
    error: entry.error,
    startedAt: entry.startedAt,
    stoppedAt: entry.stoppedAt,
    runtime: entry.startedAt === null ? 0 : Math.max(0, end - entry.startedAt),
    attempts: entry.attempts,
    retryAt: entry.retryAt,
  });
}

function failedError(entry: Entry, outcome: Extract<RunOutcome, { type: 'exited' }>): OverseerError {
  const how = outcome.signal === null ? `exited with code ${outcome.code}` : `was killed by ${outcome.signal}`;
  const retries = entry.options.retries;
  const tail = entry.lastStderr === undefined ? '' : `; its last stderr line: ${JSON.stringify(entry.lastStderr.slice(0, 200))}`;
  return new OverseerError(
    'ERR_OVERSEER_PROCESS_FAILED',
    `process ${JSON.stringify(entry.id)} ${how} and has no retries left (${entry.attempts} ${entry.attempts === 1 ? 'start' : 'starts'}, retries: ${retries})${tail}`,
    { subject: entry.id, ...(entry.pid === null ? {} : { pid: entry.pid }), exitCode: outcome.code, signal: outcome.signal },
  );
}
