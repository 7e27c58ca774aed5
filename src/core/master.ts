/**
 * The master: binds the sockets, forks children of the bundle and hands the sockets to them,
 * forwards signals, shuts down, and exits with its child's code. The children's lives and the
 * handoffs between them are children.ts; respawn after a crash is respawn.ts; building a master
 * from a config (hash, upgrader) is start.ts. It never listens or accepts; the sockets stay in
 * LISTEN state for as long as it holds them.
 */
import type { ResolvedConfig } from './config.js';
import { describeError } from '../errors.js';
import { ChangeWarner, createEmitter, type EventBody, type Log, type OverseerEvent } from '../events.js';
import { exitProcess } from './exit.js';
import { bindAll, closeAll, startListening, type BoundListener } from './listeners.js';
import type { Launcher } from './launch/launcher.js';
import { SHUTDOWN_SIGNALS, forwardedSignals, onSignals } from './signals.js';
import { Children, type ChildSnapshot, type HandoffResult } from './children.js';
import { Respawner } from './respawn.js';
import { watchParent } from './orphan.js';
import type { UpgradeHost } from '../upgrade/host.js';
import { Probation, type ProbationStatus, type ProbationVerdict } from './probation.js';
import { IdleCollector } from './idle-gc.js';
import type { HealthReport } from './launch/launcher.js';

export type { HandoffResult } from './children.js';

/** What the master reads of the config: everything but the program, which runs in children. */
export type MasterConfig = Omit<ResolvedConfig, 'program'>;

/** The release poller of a master with a fetcher (the upgrader, as start.ts wires it). */
export interface Poller {
  start(): Promise<void>;
  /** Polls as soon as the fetch loop allows. */
  pollNow(): void;
  /** Stops polling; runs first when the master stops. */
  stop(): Promise<void>;
  /** True while a poll (with its download and install) is under way. */
  busy?(): boolean;
}

export interface MasterOptions {
  readonly config: MasterConfig;
  readonly launcher: Launcher;
  readonly bundlePath: string;
  readonly sha256: string;
  readonly log: Log;
  /** More signals that start a handoff besides config.restartSignal (the CLI adds SIGHUP). */
  readonly extraRestartSignals?: readonly NodeJS.Signals[] | undefined;
  /** Builds the poller over this master, when there is a release source. */
  readonly poller?: ((host: UpgradeHost) => Poller) | undefined;
  /** Run in order when the master stops, after the poller stopped and before it exits. */
  readonly onStop?: ReadonlyArray<() => void | Promise<void>> | undefined;
}

/** A snapshot of the master for `overseer ctl status`. */
export interface MasterStatus {
  readonly pid: number;
  readonly startedAt: number;
  readonly bundlePath: string;
  readonly sha256: string;
  readonly addresses: readonly string[];
  readonly stopping: boolean;
  readonly children: readonly ChildSnapshot[];
  readonly lastHandoff: Extract<OverseerEvent, { type: 'handoff-completed' | 'handoff-failed' }> | undefined;
  readonly lastUpgrade: Extract<OverseerEvent, { type: 'upgrade-applied' | 'upgrade-rejected' | 'upgrade-rolled-back' }> | undefined;
  /** The child on probation and the time left, while one is. */
  readonly probation?: ProbationStatus | undefined;
}

export class Master implements UpgradeHost {
  readonly #config: MasterConfig;
  readonly #launcher: Launcher;
  readonly #log: Log;
  readonly emit: (event: EventBody) => void;
  readonly #bundlePath: string;
  #sha256: string;
  #listeners: BoundListener[] = [];
  readonly #children: Children;
  readonly #respawner: Respawner | undefined;
  readonly #poller: Poller | undefined;
  readonly #onStop: ReadonlyArray<() => void | Promise<void>>;
  readonly #cleanups: Array<() => void> = [];
  readonly #restartSignals: readonly NodeJS.Signals[];
  readonly #startedAt = Date.now();
  /** The first child is ready (or gone): from here on, events are work the idle collection follows. */
  #started = false;
  /** Gives memory back once the master goes quiet after work (idle-gc.ts). */
  readonly #idle = new IdleCollector({ busy: () => this.#children.busy || this.#poller?.busy?.() === true });
  #lastHandoff: MasterStatus['lastHandoff'];
  #lastUpgrade: MasterStatus['lastUpgrade'];
  #exiting = false;
  #probation: Probation | undefined;
  /** Each live child's last verdict (reportHealthy/reportUnhealthy): one given before its probation began still counts. */
  readonly #verdicts = new Map<number, HealthReport>();

  constructor(options: MasterOptions) {
    const { config, log } = options;
    this.#config = config;
    this.#launcher = options.launcher;
    this.#bundlePath = options.bundlePath;
    this.#sha256 = options.sha256;
    this.#log = log;
    this.#restartSignals = [config.restartSignal, ...(options.extraRestartSignals ?? [])];
    this.#onStop = options.onStop ?? [];
    const emit = createEmitter(config.onEvent, log);
    const handoffWarnings = new ChangeWarner(log);
    this.emit = (body) => {
      // The same failure after every crash or signal is said once (the pids in it differ).
      if (body.type === 'handoff-failed') handoffWarnings.failed(`${body.code}\n${body.error}`, `a handoff (${body.reason}) failed (${body.code}): ${body.error}`);
      if (body.type === 'handoff-completed') handoffWarnings.recovered(`handoffs work again (child ${body.to} took over, ${body.reason})`);
      if (body.type === 'handoff-completed' || body.type === 'handoff-failed') this.#lastHandoff = { ...body, at: Date.now() } as MasterStatus['lastHandoff'];
      if (body.type === 'upgrade-applied' || body.type === 'upgrade-rejected' || body.type === 'upgrade-rolled-back') {
        this.#lastUpgrade = { ...body, at: Date.now() } as MasterStatus['lastUpgrade'];
      }
      emit(body);
      this.#watch(body);
      // Every event is work done or under way: the idle collection waits for the quiet after it.
      // The start is not: a collection after it alone cost an idle master 0.5 MB (the GC's own
      // code paged in) for nothing given back (docs/benchmarks.md §9).
      if (this.#started) this.#idle.activity();
      if (body.type === 'child-ready' || body.type === 'child-exited') this.#started = true;
    };
    this.#children = new Children({
      config, launcher: options.launcher, log, emit: this.emit,
      context: () => ({ listeners: this.#listeners, sha256: this.#sha256, bundlePath: this.#bundlePath }),
      onRestart: () => this.#restart(undefined, 'child-request'),
      onLost: (code) => this.#lost(code),
      onStopped: (code) => void this.#exit(code, 'shutdown'),
      onReport: (pid, report) => {
        if (report.type === 'health') this.#verdicts.set(pid, report);
        this.#probation?.report(pid, report);
      },
    });
    this.#respawner = config.respawn && new Respawner({
      limits: config.respawn, log, emit: this.emit,
      respawn: () => {
        if (!this.#children.serving) void this.handoff('respawn');
      },
    });
    this.#poller = options.poller?.(this);
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
    return this.#children.stopping;
  }

  /** Binds, installs the signal handlers, forks the first child, then starts the poller. */
  async start(): Promise<void> {
    this.#listeners = await bindAll(this.#config.addresses);
    try {
      await startListening(this.#listeners);
    } catch (error) {
      closeAll(this.#listeners);
      throw error;
    }
    this.#cleanups.push(onSignals(SHUTDOWN_SIGNALS, (signal) => this.shutdown(signal)));
    this.#cleanups.push(onSignals(this.#restartSignals, (signal) => this.#restart(signal, 'signal')));
    this.#cleanups.push(onSignals(forwardedSignals(this.#restartSignals), (signal) => this.forward(signal)));
    this.#cleanups.push(this.#onAbort(), watchParent((parent) => {
      this.#log.warn(`npm started this master and its parent (pid ${parent}) is gone; shutting down gracefully (signal the master, pid ${process.pid}, not npm)`);
      this.shutdown('SIGTERM');
    }, (message) => this.#log.debug(message)));
    this.emit({
      type: 'master-started',
      pid: process.pid,
      addresses: this.#listeners.map((listener) => listener.info.address),
      bundlePath: this.#bundlePath,
      sha256: this.#sha256,
    });
    if (this.#config.signal?.aborted) {
      this.shutdown('SIGTERM');
      return;
    }
    this.#children.start();
    await this.#poller?.start();
  }

  /** config.signal: aborting it stops the master as SIGTERM does. */
  #onAbort(): () => void {
    const signal = this.#config.signal;
    if (!signal) return () => {};
    const stop = () => this.shutdown('SIGTERM');
    // Aborted before start: start() stops without forking.
    if (signal.aborted) return () => {};
    signal.addEventListener('abort', stop, { once: true });
    return () => signal.removeEventListener('abort', stop);
  }

  /**
   * A ready-first handoff: fork a new child, wait until it is ready, then drain the old one.
   * One runs at a time; requests that arrive meanwhile are coalesced into one more handoff.
   */
  handoff(reason: string): Promise<HandoffResult> {
    return this.#children.handoff(reason);
  }

  get serving(): boolean {
    return this.#children.serving;
  }

  /**
   * The probation of the build just handed off to (see probation.ts). While it runs, the
   * serving child's crash is its verdict, not a respawn: the upgrader rolls back.
   */
  probation(): Promise<ProbationVerdict> {
    const settings = this.#config.probation;
    const pid = this.#children.servingPid;
    if (!settings || this.stopping) return Promise.resolve({ outcome: settings ? 'stopped' : 'passed' });
    if (pid === undefined) {
      return Promise.resolve({ outcome: 'failed', cause: 'exit', error: 'the new child exited right after its handoff', evidence: {} });
    }
    const reports = this.#children.tellProbation(pid, true);
    const probation = new Probation({
      settings, pid, sha256: this.#sha256, listeners: this.#listeners.map((listener) => listener.info), reports, emit: this.emit, log: this.#log,
    });
    this.#probation = probation;
    const early = this.#verdicts.get(pid);
    if (early) probation.report(pid, early);
    void probation.done.then(() => {
      if (this.#probation === probation) this.#probation = undefined;
      this.#children.tellProbation(probation.pid, false);
    });
    return probation.done;
  }

  /** A newer release supersedes the build on probation: it ends without a verdict. */
  endProbation(): void {
    if (this.#probation?.active) this.#log.debug(`the probation of child ${this.#probation.pid} ends: a newer release supersedes it`);
    this.#probation?.stop();
  }

  /** What a probation learns from the master's own events: exits it did not ask for, a restart's new child. */
  #watch(body: EventBody): void {
    if (body.type === 'child-exited') this.#verdicts.delete(body.pid);
    const probation = this.#probation;
    if (!probation?.active) return;
    if (body.type === 'child-exited' && !body.expected) probation.exited(body.pid, body.code, body.signal);
    // A restart during probation: the new child runs the same build and is watched in its turn.
    if (body.type === 'child-ready' && body.pid !== probation.pid) {
      this.#children.tellProbation(body.pid, true);
      probation.follow(body.pid);
      const early = this.#verdicts.get(body.pid);
      if (early) probation.report(body.pid, early);
    }
  }

  /** UpgradeHost: a poll ended; the idle collection waits for the quiet after it. */
  pollSettled(): void {
    this.#idle.activity();
  }

  /** Polls the release source now. False when this master has none. */
  pollNow(): boolean {
    if (!this.#poller) return false;
    this.#poller.pollNow();
    return true;
  }

  /** A restart asked for by signal or by the child: a handoff, or under noRestart a graceful stop. */
  #restart(signal: NodeJS.Signals | undefined, reason: 'signal' | 'child-request'): void {
    if (this.#config.noRestart) this.shutdown(signal);
    else void this.handoff(reason);
  }

  /** The serving child is gone outside a handoff: respawn with backoff, or exit with its code. */
  #lost(code: number): void {
    // On probation, the crash is the verdict: the upgrader brings the previous build back.
    if (this.#probation) return;
    if (!this.#respawner || this.stopping) void this.#exit(code, 'child-exited');
    else if (!this.#respawner.crashed()) void this.#exit(code, 'crash-loop');
  }

  status(): MasterStatus {
    return {
      pid: process.pid,
      startedAt: this.#startedAt,
      bundlePath: this.#bundlePath,
      sha256: this.#sha256,
      addresses: this.#listeners.map((listener) => listener.info.address),
      stopping: this.stopping,
      children: this.#children.list(),
      lastHandoff: this.#lastHandoff,
      lastUpgrade: this.#lastUpgrade,
      probation: this.#probation?.active ? this.#probation.status() : undefined,
    };
  }

  /** The echo-token check of a staged release, run as this master's children are. */
  check(file: string, timeout: number): ReturnType<Launcher['check']> {
    return this.#launcher.check(file, timeout);
  }

  /** Sends a signal to the serving child as it is (a log-reopen signal, say). */
  forward(signal: NodeJS.Signals): void {
    this.#children.forward(signal);
  }

  /** Graceful stop: every child drains (SIGKILL at terminateTimeout), then the master exits. */
  shutdown(signal: NodeJS.Signals | undefined): void {
    this.#probation?.stop();
    if (!this.stopping) {
      this.#respawner?.cancel();
      this.#log.debug(`shutting down (${signal ?? 'requested'})`);
    }
    this.#children.stop(signal);
  }

  async #exit(code: number, reason: string): Promise<void> {
    if (this.#exiting) return;
    this.#exiting = true;
    this.emit({ type: 'master-exiting', code, reason });
    this.#idle.stop();
    const poller = this.#poller;
    for (const stop of [...(poller ? [() => poller.stop()] : []), ...this.#onStop]) {
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
