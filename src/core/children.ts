/**
 * The master's children as one state machine. A child moves starting → ready → draining → exited
 * (skipping ready when it fails) through #move alone: it checks the move against TRANSITIONS and
 * does what entering the phase means (events, timers, promises). On top of it: ready-first
 * handoffs, one at a time, with bursts coalesced into one more; and one stop path that handoffs,
 * failed children and shutdown all take. What happens when the serving child is lost (respawn or
 * exit) is the master's call, through onLost.
 */
import type { ChildProcess } from 'node:child_process';
import { OverseerError, describeError } from '../errors.js';
import type { EventBody, Log } from '../events.js';
import type { ResolvedConfig } from './config.js';
import { codeForSignal } from './exit.js';
import type { HealthReport, Launcher, LaunchContext, LaunchedChild } from './launch/launcher.js';

export type ChildPhase = 'starting' | 'ready' | 'draining' | 'exited';

/**
 * Every move a child's life allows. Any other is ignored, on purpose: a child that reports ready
 * once it is already draining stays draining, and a second stop of a draining child is a no-op.
 */
export const TRANSITIONS: Readonly<Record<ChildPhase, readonly ChildPhase[]>> = Object.freeze({
  starting: ['ready', 'draining', 'exited'],
  ready: ['draining', 'exited'],
  draining: ['exited'],
  exited: [],
});

/** A child that never got ready has no work to finish: it gets at most this long to exit. */
const FAILED_DRAIN_MS = 2_000;

export type HandoffResult = { ok: true; pid: number } | { ok: false; error: OverseerError };

export interface ChildSnapshot {
  readonly pid: number;
  readonly generation: number;
  readonly phase: ChildPhase;
  readonly forkedAt: number;
  readonly serving: boolean;
}

export interface ChildrenOptions {
  readonly config: Pick<ResolvedConfig, 'readyTimeout' | 'terminateTimeout'> & Partial<Pick<ResolvedConfig, 'drainSpread'>>;
  readonly launcher: Launcher;
  readonly log: Log;
  readonly emit: (event: EventBody) => void;
  /** What the next child runs, read at each fork (an upgrade changes the bundle). */
  readonly context: () => Omit<LaunchContext, 'generation' | 'terminateTimeout'>;
  /** A child asked for a restart (restart() in its program). */
  readonly onRestart: () => void;
  /** The serving child is gone and no handoff replaces it; `code` is what it passes on. Never while stopping. */
  readonly onLost: (code: number) => void;
  /** Stopping, and the last child is gone: the master exits with `code`. */
  readonly onStopped: (code: number) => void;
  /** A child reported its responses or a verdict (probation.ts judges them). */
  readonly onReport?: (pid: number, report: HealthReport) => void;
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((done, fail) => {
    resolve = done;
    reject = fail;
  });
  return { promise, resolve, reject };
}

interface ChildRecord {
  readonly process: ChildProcess;
  readonly drain: LaunchedChild['drain'];
  readonly probation: LaunchedChild['probation'];
  readonly pid: number;
  readonly generation: number;
  readonly forkedAt: number;
  phase: ChildPhase;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Why it never became ready (its program threw, or readyTimeout), when it did not. */
  failure: OverseerError | undefined;
  /** Resolves on 'ready'; rejects if the child fails, exits or times out first. */
  readonly ready: Deferred<void>;
  readonly exited: Deferred<void>;
  readyTimer: NodeJS.Timeout | undefined;
  killTimer: NodeJS.Timeout | undefined;
}

/** The moves #move makes, with what entering each phase needs to know. */
type Move =
  | { readonly to: 'ready' }
  /** `signal`: ask the child with it instead of the drain message (a shutdown by signal). */
  | { readonly to: 'draining'; readonly reason: string; readonly deadline: number; readonly signal?: NodeJS.Signals | undefined }
  | { readonly to: 'exited'; readonly code: number | null; readonly signal: NodeJS.Signals | null };

function shuttingDown(): OverseerError {
  return new OverseerError('ERR_OVERSEER_SHUTTING_DOWN', 'the master is shutting down');
}

export class Children {
  readonly #options: ChildrenOptions;
  readonly #children = new Set<ChildRecord>();
  #current: ChildRecord | undefined;
  #generation = 0;
  #running: Promise<HandoffResult> | undefined;
  #queued: (Deferred<HandoffResult> & { readonly reason: string }) | undefined;
  #stopping: { readonly signal: NodeJS.Signals | undefined } | undefined;
  /** While stopping: the serving child's code, once it exited. */
  #exitCode: number | undefined;

  constructor(options: ChildrenOptions) {
    this.#options = options;
  }

  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /** True while a handoff runs or a child is starting or draining (core/idle-gc.ts waits for its end). */
  get busy(): boolean {
    return this.#running !== undefined || [...this.#children].some((record) => record.phase === 'starting' || record.phase === 'draining');
  }

  /** True while a child serves (or is about to: the first one, before it is ready). */
  get serving(): boolean {
    return this.#current !== undefined;
  }

  /** Forks the first child. One that never gets ready is stopped; its exit decides what follows. */
  start(): void {
    const first = this.#fork('start');
    this.#current = first;
    first.ready.promise.catch((error: unknown) => {
      // A first child that throws in its program exits on its own.
      this.#options.log.warn(describeError(error));
      if (first.phase === 'starting') this.#stop(first, 'ready-timeout', Math.min(FAILED_DRAIN_MS, this.#options.config.terminateTimeout));
    });
  }

  /**
   * A ready-first handoff: fork a new child, wait until it is ready, then drain the old one.
   * One runs at a time; requests that arrive meanwhile are coalesced into one more handoff.
   */
  handoff(reason: string): Promise<HandoffResult> {
    if (this.#stopping) return Promise.resolve({ ok: false, error: shuttingDown() });
    if (!this.#running) {
      this.#running = this.#runHandoff(reason).finally(() => this.#afterHandoff());
      return this.#running;
    }
    this.#queued ??= { reason, ...deferred<HandoffResult>() };
    this.#options.log.debug(`handoff (${reason}) coalesced into the next one`);
    return this.#queued.promise;
  }

  /** Graceful stop of every child (SIGKILL at terminateTimeout); onStopped follows the last exit. */
  stop(signal: NodeJS.Signals | undefined): void {
    if (this.#stopping) {
      // A second Ctrl-C is passed on; the child's drain is idempotent.
      if (signal) for (const record of [...this.#children]) record.process.kill(signal);
      return;
    }
    this.#stopping = { signal };
    if (this.#children.size === 0) {
      this.#options.onStopped(this.#stopCode());
      return;
    }
    for (const record of [...this.#children]) this.#stop(record, 'shutdown', this.#options.config.terminateTimeout, signal);
  }

  /** Sends a signal to the serving child as it is (a log-reopen signal, say). */
  forward(signal: NodeJS.Signals): void {
    const target = this.#current;
    if (target && target.phase !== 'exited') {
      this.#options.log.debug(`forwarding ${signal} to child ${target.pid}`);
      target.process.kill(signal);
    }
  }

  list(): ChildSnapshot[] {
    return [...this.#children].map((record) => ({
      pid: record.pid, generation: record.generation, phase: record.phase, forkedAt: record.forkedAt, serving: record === this.#current,
    }));
  }

  /** The serving child's pid, when one serves (or is starting as the first). */
  get servingPid(): number | undefined {
    return this.#current?.pid;
  }

  /** Tells a child its probation began or ended; false where its launcher has no channel, or the child is leaving. */
  tellProbation(pid: number, on: boolean): boolean {
    const record = [...this.#children].find((child) => child.pid === pid);
    if (!record?.probation || record.phase === 'exited' || record.phase === 'draining') return false;
    record.probation(on);
    return true;
  }

  #afterHandoff(): void {
    this.#running = undefined;
    const queued = this.#queued;
    this.#queued = undefined;
    if (queued) void this.handoff(queued.reason).then(queued.resolve);
  }

  async #runHandoff(reason: string): Promise<HandoffResult> {
    const { emit, config } = this.#options;
    const started = Date.now();
    const old = this.#current;
    emit({ type: 'handoff-started', reason, from: old?.pid });
    const next = this.#fork(reason);
    try {
      await next.ready.promise;
    } catch (error) {
      const failure = error instanceof OverseerError ? error
        : new OverseerError('ERR_OVERSEER_CHILD_FAILED', describeError(error), { cause: error, pid: next.pid });
      this.#stop(next, 'failed', Math.min(FAILED_DRAIN_MS, config.terminateTimeout));
      emit({ type: 'handoff-failed', reason, pid: next.pid, error: failure.message, code: failure.code });
      await next.exited.promise;
      // The old child died meanwhile and its exit left the decision to this handoff.
      if (!this.#stopping && (!this.#current || this.#current.phase === 'exited')) this.#options.onLost(this.#codeOf(next));
      return { ok: false, error: failure };
    }
    if (this.#stopping) {
      this.#stop(next, 'shutdown', config.terminateTimeout);
      return { ok: false, error: shuttingDown() };
    }
    this.#current = next;
    const readyMs = Date.now() - started;
    let drainMs = 0;
    if (old && old.phase !== 'exited') {
      const drainStart = Date.now();
      this.#stop(old, `handoff:${reason}`, config.terminateTimeout);
      await old.exited.promise;
      drainMs = Date.now() - drainStart;
    }
    emit({ type: 'handoff-completed', reason, from: old?.pid, to: next.pid, timings: { readyMs, drainMs, totalMs: Date.now() - started } });
    // The new child died while the old one drained; its exit left the decision to this handoff.
    if (!this.#stopping && !this.#current) this.#options.onLost(this.#codeOf(next));
    return { ok: true, pid: next.pid };
  }

  #fork(reason: string): ChildRecord {
    const { launcher, config, emit, log } = this.#options;
    const generation = ++this.#generation;
    const launched = launcher.launch({ ...this.#options.context(), generation, terminateTimeout: config.terminateTimeout, drainSpread: config.drainSpread }, {
      ready: () => void this.#move(record, { to: 'ready' }),
      failed: (message) => this.#fail(record, new OverseerError('ERR_OVERSEER_CHILD_FAILED', `child ${record.pid} failed in its program: ${message}`, { pid: record.pid })),
      restart: () => this.#options.onRestart(),
      report: (report) => this.#options.onReport?.(record.pid, report),
    });
    const record: ChildRecord = {
      process: launched.process, drain: launched.drain, probation: launched.probation?.bind(launched), pid: launched.process.pid ?? -1, generation, forkedAt: Date.now(),
      phase: 'starting', exit: undefined, failure: undefined, ready: deferred(), exited: deferred(), readyTimer: undefined, killTimer: undefined,
    };
    record.ready.promise.catch(() => {});
    this.#children.add(record);
    emit({ type: 'child-forked', pid: record.pid, generation, reason });
    record.readyTimer = setTimeout(() => this.#fail(record, new OverseerError(
      'ERR_OVERSEER_READY_TIMEOUT',
      `child ${record.pid} was not ready within readyTimeout (${config.readyTimeout} ms); it must report ready once it serves`,
      { pid: record.pid },
    )), config.readyTimeout);
    record.process.on('error', (error) => log.warn(`child ${record.pid}: ${describeError(error)}`));
    record.process.once('exit', (code, signal) => {
      const wasServing = record === this.#current;
      this.#move(record, { to: 'exited', code, signal });
      this.#afterExit(record, wasServing);
    });
    return record;
  }

  /**
   * The one place a child changes phase. Returns false, and does nothing, for a move the table
   * does not allow.
   */
  #move(record: ChildRecord, move: Move): boolean {
    const from = record.phase;
    if (!TRANSITIONS[from].includes(move.to)) return false;
    record.phase = move.to;
    const { emit, log } = this.#options;
    const { pid, generation } = record;
    switch (move.to) {
      case 'ready':
        clearTimeout(record.readyTimer);
        emit({ type: 'child-ready', pid, generation, bootMs: Date.now() - record.forkedAt });
        record.ready.resolve();
        break;
      case 'draining':
        emit({ type: 'child-draining', pid, generation, reason: move.reason });
        // A child still starting may not listen for the drain message yet; SIGTERM drains it
        // once its handlers are in, and ends it before.
        if (move.signal) record.process.kill(move.signal);
        else if (from === 'starting') record.process.kill('SIGTERM');
        else record.drain(move.reason);
        record.killTimer = setTimeout(() => {
          log.warn(`child ${pid} did not exit within ${move.deadline} ms of its drain; killing it`);
          record.process.kill('SIGKILL');
        }, move.deadline);
        break;
      case 'exited': {
        clearTimeout(record.readyTimer);
        clearTimeout(record.killTimer);
        const expected = from === 'draining' || this.#stopping !== undefined;
        record.exit = { code: move.code, signal: move.signal };
        this.#children.delete(record);
        emit({ type: 'child-exited', pid, generation, code: move.code, signal: move.signal, expected });
        record.ready.reject(new OverseerError(
          'ERR_OVERSEER_CHILD_FAILED',
          `child ${pid} exited (${move.signal ?? `code ${move.code}`}) before it was ready`,
          { pid, exitCode: move.code, signal: move.signal },
        ));
        record.exited.resolve();
        break;
      }
    }
    return true;
  }

  /** The child will not get ready: its program threw, or readyTimeout passed. */
  #fail(record: ChildRecord, error: OverseerError): void {
    if (record.phase === 'starting') record.failure ??= error;
    record.ready.reject(error);
  }

  /**
   * The stop path: asks a child to drain, and kills it if it is still there after `deadline` ms.
   * A child already draining only gets `signal` passed on.
   */
  #stop(record: ChildRecord, reason: string, deadline: number, signal?: NodeJS.Signals): void {
    if (record.phase === 'draining' && signal) record.process.kill(signal);
    this.#move(record, { to: 'draining', reason, deadline, signal });
  }

  #afterExit(record: ChildRecord, wasServing: boolean): void {
    if (this.#stopping) {
      if (wasServing) this.#exitCode = this.#codeOf(record);
      if (this.#children.size === 0) this.#options.onStopped(this.#exitCode ?? this.#stopCode());
      return;
    }
    if (!wasServing) return;
    this.#current = undefined;
    // A handoff under way decides what comes next: its new child takes over, or it fails
    // and reports the loss itself.
    if (this.#running) return;
    this.#options.onLost(this.#codeOf(record));
  }

  /** The code a child's exit passes on; a child that failed before ready never passes on 0. */
  #codeOf(record: ChildRecord): number {
    const exit = record.exit;
    const code = exit ? (exit.code ?? (exit.signal ? codeForSignal(exit.signal) : 1)) : 1;
    return code === 0 && record.failure ? 1 : code;
  }

  #stopCode(): number {
    const signal = this.#stopping?.signal;
    return signal ? codeForSignal(signal) : 0;
  }
}
