/**
 * The master: binds the sockets, forks children of the bundle and hands the sockets to them,
 * runs ready-first handoffs one at a time, forwards signals, and exits with its child's code.
 * It never listens or accepts; the sockets stay in LISTEN state for as long as it holds them.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { bundleSha256 } from '../upgrade/hash.js';
import type { ResolvedConfig } from './config.js';
import { OverseerError, describeError } from '../errors.js';
import { createEmitter, createLog, type Log, type OverseerEvent } from '../events.js';
import { codeForSignal, exitProcess } from './exit.js';
import { bindAll, closeAll, startListening, type BoundListener } from './listeners.js';
import { NodeLauncher } from './launch/node.js';
import type { Launcher, LaunchedChild } from './launch/launcher.js';
import { SHUTDOWN_SIGNALS, forwardedSignals, onSignals } from './signals.js';

type ChildPhase = 'starting' | 'ready' | 'draining' | 'exited';

interface ChildRecord {
  readonly process: ChildProcess;
  readonly drain: LaunchedChild['drain'];
  readonly pid: number;
  readonly generation: number;
  readonly forkedAt: number;
  phase: ChildPhase;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Why it never became ready, when it did not. */
  failure: OverseerError | undefined;
  /** Resolves when the child reports ready; rejects if it fails, exits or times out first. */
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  killTimer: NodeJS.Timeout | undefined;
}

export type HandoffResult = { ok: true; pid: number } | { ok: false; error: OverseerError };

/** What the master reads of the config: everything but the program, which runs in children. */
export type MasterConfig = Omit<ResolvedConfig, 'program'>;

export interface MasterOptions {
  readonly config: MasterConfig;
  readonly launcher: Launcher;
  readonly bundlePath: string;
  readonly sha256: string;
  readonly log: Log;
  /** More signals that start a handoff besides config.restartSignal (the CLI adds SIGHUP). */
  readonly extraRestartSignals?: readonly NodeJS.Signals[];
}

/** A snapshot of the master for `overseer ctl status`. */
export interface MasterStatus {
  readonly pid: number;
  readonly startedAt: number;
  readonly bundlePath: string;
  readonly sha256: string;
  readonly addresses: readonly string[];
  readonly stopping: boolean;
  readonly children: ReadonlyArray<{ pid: number; generation: number; phase: ChildPhase; forkedAt: number; serving: boolean }>;
  readonly lastHandoff: Extract<OverseerEvent, { type: 'handoff-completed' | 'handoff-failed' }> | undefined;
  readonly lastUpgrade: Extract<OverseerEvent, { type: 'upgrade-applied' | 'upgrade-rejected' | 'upgrade-rolled-back' }> | undefined;
}

export class Master {
  readonly #config: MasterConfig;
  readonly #launcher: Launcher;
  readonly #log: Log;
  readonly emit: ReturnType<typeof createEmitter>;
  #bundlePath: string;
  #sha256: string;
  #listeners: BoundListener[] = [];
  readonly #children = new Set<ChildRecord>();
  #current: ChildRecord | undefined;
  #generation = 0;
  #handoff: Promise<HandoffResult> | undefined;
  #queued: { reason: string; promise: Promise<HandoffResult>; resolve: (result: HandoffResult) => void } | undefined;
  #shutdown: { signal: NodeJS.Signals | undefined } | undefined;
  #exitCode: number | undefined;
  readonly #crashes: number[] = [];
  #respawnTimer: NodeJS.Timeout | undefined;
  readonly #cleanups: Array<() => void> = [];
  readonly #restartSignals: readonly NodeJS.Signals[];
  readonly #startedAt = Date.now();
  #lastHandoff: MasterStatus['lastHandoff'];
  #lastUpgrade: MasterStatus['lastUpgrade'];
  /** Polls the fetcher now, when there is one (set by startMaster). */
  pollNow: (() => void) | undefined;
  /** Called when the master stops, before it exits (the fetch loop hooks in here). */
  readonly onStop: Array<() => void | Promise<void>> = [];

  constructor(options: MasterOptions) {
    this.#config = options.config;
    this.#launcher = options.launcher;
    this.#bundlePath = options.bundlePath;
    this.#sha256 = options.sha256;
    this.#log = options.log;
    this.#restartSignals = [options.config.restartSignal, ...(options.extraRestartSignals ?? [])];
    const emit = createEmitter(options.config.onEvent, this.#log);
    this.emit = (body) => {
      if (body.type === 'handoff-completed' || body.type === 'handoff-failed') this.#lastHandoff = { ...body, at: Date.now() } as MasterStatus['lastHandoff'];
      if (body.type === 'upgrade-applied' || body.type === 'upgrade-rejected' || body.type === 'upgrade-rolled-back') {
        this.#lastUpgrade = { ...body, at: Date.now() } as MasterStatus['lastUpgrade'];
      }
      emit(body);
    };
  }

  get log(): Log {
    return this.#log;
  }

  get sha256(): string {
    return this.#sha256;
  }

  /** The bundle now installed; the next child runs it. */
  setBundle(sha256: string): void {
    this.#sha256 = sha256;
  }

  get bundlePath(): string {
    return this.#bundlePath;
  }

  get stopping(): boolean {
    return this.#shutdown !== undefined;
  }

  async start(): Promise<void> {
    this.#listeners = await bindAll(this.#config.addresses);
    try {
      await startListening(this.#listeners);
    } catch (error) {
      closeAll(this.#listeners);
      throw error;
    }
    this.#cleanups.push(onSignals(SHUTDOWN_SIGNALS, (signal) => this.shutdown(signal)));
    this.#cleanups.push(onSignals(this.#restartSignals, (signal) => {
      if (this.#config.noRestart) this.shutdown(signal);
      else void this.handoff('signal');
    }));
    this.#cleanups.push(onSignals(forwardedSignals(this.#restartSignals), (signal) => this.forward(signal)));
    this.emit({
      type: 'master-started',
      pid: process.pid,
      addresses: this.#listeners.map((listener) => listener.info.address),
      bundlePath: this.#bundlePath,
      sha256: this.#sha256,
    });
    const first = this.#fork('start');
    this.#current = first;
    first.ready.catch((error: unknown) => {
      // A first child that throws in its program exits on its own; one that never gets
      // ready is stopped here, and the exit path decides what the master does.
      this.#log.warn(describeError(error));
      if (first.phase === 'starting') this.#stopChild(first, 'ready-timeout', Math.min(2_000, this.#config.terminateTimeout));
    });
  }

  /**
   * A ready-first handoff: fork a new child, wait until it is ready, then drain the old one.
   * One runs at a time; requests that arrive meanwhile are coalesced into one more handoff.
   */
  handoff(reason: string): Promise<HandoffResult> {
    if (this.#shutdown) {
      return Promise.resolve({ ok: false, error: new OverseerError('ERR_OVERSEER_CHILD_FAILED', 'the master is shutting down') });
    }
    if (!this.#handoff) {
      this.#handoff = this.#runHandoff(reason).finally(() => this.#afterHandoff());
      return this.#handoff;
    }
    if (!this.#queued) {
      let resolve!: (result: HandoffResult) => void;
      const promise = new Promise<HandoffResult>((done) => (resolve = done));
      this.#queued = { reason, promise, resolve };
    }
    this.#log.debug(`handoff (${reason}) coalesced into the next one`);
    return this.#queued.promise;
  }

  #afterHandoff(): void {
    this.#handoff = undefined;
    const queued = this.#queued;
    this.#queued = undefined;
    if (queued) void this.handoff(queued.reason).then(queued.resolve);
  }

  async #runHandoff(reason: string): Promise<HandoffResult> {
    const started = Date.now();
    const old = this.#current;
    this.emit({ type: 'handoff-started', reason, from: old?.pid });
    const next = this.#fork(reason);
    try {
      await next.ready;
    } catch (error) {
      const failure = error instanceof OverseerError ? error
        : new OverseerError('ERR_OVERSEER_CHILD_FAILED', describeError(error), { cause: error, pid: next.pid });
      this.#stopChild(next, 'failed', Math.min(2_000, this.#config.terminateTimeout));
      this.emit({ type: 'handoff-failed', reason, pid: next.pid, error: failure.message, code: failure.code });
      await next.exited;
      if (!this.#shutdown && (!this.#current || this.#current.phase === 'exited')) this.#currentLost(this.#codeOf(next));
      return { ok: false, error: failure };
    }
    if (this.#shutdown) {
      this.#stopChild(next, 'shutdown', this.#config.terminateTimeout);
      return { ok: false, error: new OverseerError('ERR_OVERSEER_CHILD_FAILED', 'the master is shutting down') };
    }
    this.#current = next;
    const readyMs = Date.now() - started;
    let drainMs = 0;
    if (old && old.phase !== 'exited') {
      const drainStart = Date.now();
      this.#stopChild(old, `handoff:${reason}`, this.#config.terminateTimeout);
      await old.exited;
      drainMs = Date.now() - drainStart;
    }
    this.emit({
      type: 'handoff-completed', reason, from: old?.pid, to: next.pid,
      timings: { readyMs, drainMs, totalMs: Date.now() - started },
    });
    return { ok: true, pid: next.pid };
  }

  #fork(reason: string): ChildRecord {
    const generation = ++this.#generation;
    let markReady!: () => void;
    let rejectReady!: (error: OverseerError) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      rejectReady = reject;
    });
    ready.catch(() => {});
    const markFailed = (error: OverseerError) => {
      if (record.phase === 'starting' && !record.failure) record.failure = error;
      rejectReady(error);
    };
    let markExited!: () => void;
    const exited = new Promise<void>((resolve) => (markExited = resolve));
    let readyTimer: NodeJS.Timeout | undefined;
    const launched = this.#launcher.launch({
      generation, listeners: this.#listeners, sha256: this.#sha256, bundlePath: this.#bundlePath,
      terminateTimeout: this.#config.terminateTimeout,
    }, {
      ready: () => {
        if (record.phase !== 'starting') return;
        clearTimeout(readyTimer);
        record.phase = 'ready';
        this.emit({ type: 'child-ready', pid: record.pid, generation, bootMs: Date.now() - record.forkedAt });
        markReady();
      },
      failed: (message) => {
        markFailed(new OverseerError('ERR_OVERSEER_CHILD_FAILED', `child ${record.pid} failed in its program: ${message}`, { pid: record.pid }));
      },
      restart: () => {
        if (this.#config.noRestart) this.shutdown(undefined);
        else void this.handoff('child-request');
      },
    });
    const child = launched.process;
    const record: ChildRecord = {
      process: child, drain: launched.drain, pid: child.pid ?? -1, generation, forkedAt: Date.now(), phase: 'starting',
      exit: undefined, failure: undefined, ready, exited, killTimer: undefined,
    };
    this.#children.add(record);
    this.emit({ type: 'child-forked', pid: record.pid, generation, reason });

    readyTimer = setTimeout(() => {
      markFailed(new OverseerError(
        'ERR_OVERSEER_READY_TIMEOUT',
        `child ${record.pid} was not ready within readyTimeout (${this.#config.readyTimeout} ms); it must report ready once it serves`,
        { pid: record.pid },
      ));
    }, this.#config.readyTimeout);

    child.on('error', (error) => this.#log.warn(`child ${record.pid}: ${describeError(error)}`));
    child.once('exit', (code, signal) => {
      clearTimeout(readyTimer);
      clearTimeout(record.killTimer);
      const wasCurrent = this.#current === record && record.phase !== 'draining';
      const expected = record.phase === 'draining' || this.#shutdown !== undefined;
      record.phase = 'exited';
      record.exit = { code, signal };
      this.#children.delete(record);
      this.emit({ type: 'child-exited', pid: record.pid, generation, code, signal, expected });
      markFailed(new OverseerError(
        'ERR_OVERSEER_CHILD_FAILED',
        `child ${record.pid} exited (${signal ?? `code ${code}`}) before it was ready`,
        { pid: record.pid, exitCode: code, signal },
      ));
      markExited();
      this.#onExit(record, wasCurrent);
    });
    return record;
  }

  /** Asks a child to drain, and kills it if it is still there after `deadline` ms. */
  #stopChild(record: ChildRecord, reason: string, deadline: number): void {
    if (record.phase === 'exited' || record.phase === 'draining') return;
    // A child still starting may not listen for the drain message yet; SIGTERM drains it
    // once its handlers are in, and ends it before.
    const viaSignal = record.phase === 'starting';
    record.phase = 'draining';
    this.emit({ type: 'child-draining', pid: record.pid, generation: record.generation, reason });
    if (viaSignal) record.process.kill('SIGTERM');
    else record.drain(reason);
    record.killTimer = setTimeout(() => {
      this.#log.warn(`child ${record.pid} did not exit within ${deadline} ms of its drain; killing it`);
      record.process.kill('SIGKILL');
    }, deadline);
  }

  #onExit(record: ChildRecord, wasCurrent: boolean): void {
    if (this.#shutdown) {
      if (record === this.#current) this.#exitCode = this.#codeOf(record);
      if (this.#children.size === 0) void this.#exit(this.#exitCode ?? this.#shutdownCode(), 'shutdown');
      return;
    }
    if (!wasCurrent && record !== this.#current) return;
    this.#current = undefined;
    // A handoff under way decides what comes next: its new child takes over, or it fails
    // and reports the loss itself.
    if (this.#handoff) return;
    this.#currentLost(this.#codeOf(record));
  }

  /** The serving child is gone outside a handoff: respawn with backoff, or exit with its code. */
  #currentLost(code: number): void {
    const respawn = this.#config.respawn;
    if (!respawn || this.#shutdown) {
      void this.#exit(code, 'child-exited');
      return;
    }
    const now = Date.now();
    this.#crashes.push(now);
    while (this.#crashes.length > 0 && (this.#crashes[0] ?? now) <= now - respawn.window) this.#crashes.shift();
    if (this.#crashes.length > respawn.maxCrashes) {
      this.#log.warn(`child crashed ${this.#crashes.length} times within ${respawn.window} ms; giving up (respawn.maxCrashes ${respawn.maxCrashes})`);
      void this.#exit(code, 'crash-loop');
      return;
    }
    const delay = Math.min(respawn.maxDelay, respawn.minDelay * 2 ** (this.#crashes.length - 1));
    this.emit({ type: 'respawn-scheduled', delayMs: delay, crashes: this.#crashes.length });
    this.#respawnTimer = setTimeout(() => {
      this.#respawnTimer = undefined;
      if (!this.#current) void this.handoff('respawn');
    }, delay);
  }

  /** The code a child's exit passes on; a child that failed before ready never passes on 0. */
  #codeOf(record: ChildRecord): number {
    const exit = record.exit;
    const code = exit ? (exit.code ?? (exit.signal ? codeForSignal(exit.signal) : 1)) : 1;
    return code === 0 && record.failure ? 1 : code;
  }

  #shutdownCode(): number {
    const signal = this.#shutdown?.signal;
    return signal ? codeForSignal(signal) : 0;
  }

  status(): MasterStatus {
    return {
      pid: process.pid,
      startedAt: this.#startedAt,
      bundlePath: this.#bundlePath,
      sha256: this.#sha256,
      addresses: this.#listeners.map((listener) => listener.info.address),
      stopping: this.stopping,
      children: [...this.#children].map((record) => ({
        pid: record.pid, generation: record.generation, phase: record.phase, forkedAt: record.forkedAt, serving: record === this.#current,
      })),
      lastHandoff: this.#lastHandoff,
      lastUpgrade: this.#lastUpgrade,
    };
  }

  /** The echo-token check of a staged release, run as this master's children are. */
  check(file: string, timeout: number): ReturnType<Launcher['check']> {
    return this.#launcher.check(file, timeout);
  }

  /** Sends a signal to the serving child as it is (a log-reopen signal, say). */
  forward(signal: NodeJS.Signals): void {
    const target = this.#current;
    if (target && target.phase !== 'exited') {
      this.#log.debug(`forwarding ${signal} to child ${target.pid}`);
      target.process.kill(signal);
    }
  }

  /** Graceful stop: every child drains (SIGKILL at terminateTimeout), then the master exits. */
  shutdown(signal: NodeJS.Signals | undefined): void {
    if (this.#shutdown) {
      // A second Ctrl-C is passed on; the child's drain is idempotent.
      for (const record of this.#children) if (signal) record.process.kill(signal);
      return;
    }
    this.#shutdown = { signal };
    clearTimeout(this.#respawnTimer);
    this.#log.debug(`shutting down (${signal ?? 'requested'})`);
    if (this.#children.size === 0) {
      void this.#exit(this.#shutdownCode(), 'shutdown');
      return;
    }
    for (const record of this.#children) {
      if (record.phase === 'exited') continue;
      if (signal) record.process.kill(signal);
      else this.#stopChild(record, 'shutdown', this.#config.terminateTimeout);
      if (!record.killTimer) {
        record.phase = 'draining';
        record.killTimer = setTimeout(() => record.process.kill('SIGKILL'), this.#config.terminateTimeout);
      }
    }
  }

  #exiting = false;

  async #exit(code: number, reason: string): Promise<void> {
    if (this.#exiting) return;
    this.#exiting = true;
    this.emit({ type: 'master-exiting', code, reason });
    for (const stop of this.onStop) {
      try {
        await stop();
      } catch (error) {
        this.#log.warn(`while stopping: ${describeError(error)}`);
      }
    }
    for (const cleanup of this.#cleanups) cleanup();
    closeAll(this.#listeners);
    exitProcess(code);
  }
}

export type { OverseerEvent };

/** Resolves the bundle, hashes it, binds and forks the first child. */
export async function startMaster(config: MasterConfig, launcher?: Launcher, extraRestartSignals?: readonly NodeJS.Signals[]): Promise<Master> {
  const bundlePath = config.bundlePath ?? path.resolve(process.argv[1] ?? '');
  let sha256: string;
  try {
    sha256 = await bundleSha256(bundlePath);
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `cannot read the bundle ${bundlePath}: ${describeError(error)}; set config.bundlePath to the file to run`, { cause: error, subject: 'bundlePath' });
  }
  const log = createLog(config, 'master');
  const master = new Master({ config, bundlePath, sha256, launcher: launcher ?? new NodeLauncher(log), log, ...(extraRestartSignals ? { extraRestartSignals } : {}) });
  await master.start();
  if (config.fetcher) {
    const { Upgrader } = await import('../upgrade/upgrader.js');
    const upgrader = new Upgrader(master, config, config.fetcher);
    // A CLI under noRestart lets an upgrade under way land before the master exits.
    master.onStop.push(() => upgrader.loop.stop(config.noRestart));
    master.pollNow = () => upgrader.loop.pollNow();
    await upgrader.start();
  }
  return master;
}
