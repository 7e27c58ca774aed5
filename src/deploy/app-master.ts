/**
 * The `overseer run` master of each `overseer deploy` application: starting and stopping it
 * under a Supervisor, its argv, reading its event lines, and waiting on them (master started,
 * first child ready, handoff done). A master that ends with code 0 on its own is started again.
 */
import fs from 'node:fs';
import { readAppConfig, type AppConfig } from './app-config.js';
import { codeOf, type App, type EventBody, type MasterNews } from './app.js';
import { DEFAULTS } from '../core/config.js';
import { OverseerError, describeError } from '../errors.js';
import type { OverseerEvent } from '../events.js';
import { EVENT_LINE_PREFIX } from '../protocol.js';
import { Supervisor, type LogLine, type ProcessState, type StateChange } from '../supervisor/supervisor.js';

const ACTIVE: ReadonlySet<ProcessState> = new Set(['starting', 'running', 'stopping', 'backoff']);
/** Extra time the supervisor allows a master to stop after its children's drain deadline. */
const STOP_MARGIN = 5_000;
/** Waits on a master beyond its own deadlines before an operation gives up on it. */
const WAIT_MARGIN = 10_000;
const FINISHED_RESTART_DELAY = 1_000;

/** What the masters need from the deployment. */
export interface MasterHost {
  app(name: string): App | undefined;
  emit(body: EventBody): void;
  output(line: { readonly app: string; readonly stream: 'stdout' | 'stderr'; readonly text: string }): void;
  stopping(): boolean;
}

export class AppMasters {
  readonly #host: MasterHost;
  readonly #cliPath: string;
  readonly #supervisor = new Supervisor();
  readonly #restartTimers = new Map<string, NodeJS.Timeout>();

  constructor(host: MasterHost, cliPath: string) {
    this.#host = host;
    this.#cliPath = cliPath;
    this.#supervisor.on('log', (line) => this.#onLog(line));
    this.#supervisor.on('state', (change) => this.#onState(change));
  }

  isActive(app: App): boolean {
    return this.#supervisor.ids().includes(app.name) && ACTIVE.has(this.#supervisor.status(app.name).state);
  }

  /** Stops the app's master gracefully, when it has one. */
  async stop(app: App): Promise<void> {
    if (this.#supervisor.ids().includes(app.name)) await this.#supervisor.stop(app.name);
  }

  /** Stops every master (with `kill`, SIGKILL at once) and every pending restart. */
  async stopAll(options: { readonly kill?: boolean } = {}): Promise<void> {
    for (const timer of this.#restartTimers.values()) clearTimeout(timer);
    this.#restartTimers.clear();
    await this.#supervisor.stopAll(options);
  }

  /** Starts the app's `overseer run` master under the supervisor, from a fresh read of app.json. */
  async start(app: App): Promise<void> {
    if (this.#host.stopping()) throw new OverseerError('ERR_OVERSEER_SHUTTING_DOWN', 'overseer deploy is stopping');
    const config = await readAppConfig(app.dir);
    if (!fs.existsSync(app.current)) {
      throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${app.name} has no current/ folder; stage a release in release/ and drop command/release`, { subject: app.current });
    }
    if (this.isActive(app)) return;
    if (this.#supervisor.ids().includes(app.name)) this.#supervisor.remove(app.name);
    this.#supervisor.add(app.name, process.execPath, this.#masterArgs(app, config), {
      // The app folder, not current/: it keeps its path and inode across releases.
      cwd: app.dir,
      env: config.env,
      retries: Infinity,
      retryDelay: 1_000,
      maxRetryDelay: 30_000,
      stopTimeout: (config.terminateTimeout ?? DEFAULTS.terminateTimeout) + STOP_MARGIN,
    });
    void this.#supervisor.supervise(app.name).catch(() => {});
  }

  /** True once the app's master handles the restart signal; waits while it is still starting. */
  async waitLive(app: App): Promise<boolean> {
    if (app.masterPid !== undefined) return true;
    if (!this.isActive(app)) return false;
    const state = this.#supervisor.status(app.name).state;
    if (state !== 'starting' && state !== 'running') return false;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), WAIT_MARGIN);
      const done = (value: boolean) => {
        clearTimeout(timer);
        app.listeners.delete(listener);
        resolve(value);
      };
      const listener = (news: MasterNews) => {
        if (news.kind === 'gone') done(false);
        else if (news.event.type === 'master-started') done(true);
      };
      app.listeners.add(listener);
    });
  }

  /** The restart signal to the master (only the master: its children run in groups of their own); resolves with the new child's pid. */
  async handoff(app: App, config: AppConfig): Promise<number> {
    const timeout = (config.readyTimeout ?? DEFAULTS.readyTimeout) + (config.terminateTimeout ?? DEFAULTS.terminateTimeout) + WAIT_MARGIN;
    let to = 0;
    await watchMaster(app, timeout, 'handoff', (event) => {
      if (event.type === 'handoff-completed' && event.reason === 'signal') {
        to = event.to;
        return true;
      }
      if (event.type === 'handoff-failed' && event.reason === 'signal') return new OverseerError('ERR_OVERSEER_CHILD_FAILED', event.error);
      return undefined;
    }, () => {
      const pid = app.masterPid;
      if (pid === undefined) throw new OverseerError('ERR_OVERSEER_PROCESS_NOT_RUNNING', 'its overseer run process is not running');
      process.kill(pid, DEFAULTS.restartSignal);
    });
    return to;
  }

  /** Starts the app's master and waits for its first child to be ready. */
  startAndWaitReady(app: App, config: AppConfig): Promise<void> {
    const timeout = (config.readyTimeout ?? DEFAULTS.readyTimeout) + WAIT_MARGIN;
    let readyChild = 0;
    return watchMaster(app, timeout, 'start', (event) => {
      if (event.type === 'child-forked' && readyChild === 0) readyChild = event.pid;
      if (event.type === 'child-ready' && event.pid === readyChild) return true;
      if (event.type === 'child-exited' && event.pid === readyChild) {
        return new OverseerError('ERR_OVERSEER_CHILD_FAILED', `its first child exited (${event.signal ?? `code ${event.code}`}) before it was ready`);
      }
      return undefined;
    }, () => this.start(app));
  }

  #masterArgs(app: App, config: AppConfig): string[] {
    const [command, ...args] = config.command;
    // The restart signal is named, so the master and handoff() agree on it.
    const flags = [this.#cliPath, 'run', '--events', '--respawn', '--restart-signal', DEFAULTS.restartSignal];
    for (const listen of config.listen) flags.push('--listen', listen);
    if (config.ready.kind === 'delay') flags.push('--ready-delay', String(config.ready.ms));
    if (config.readyTimeout !== undefined) flags.push('--ready-timeout', String(config.readyTimeout));
    if (config.terminateTimeout !== undefined) flags.push('--terminate-timeout', String(config.terminateTimeout));
    if (config.stopSignal !== undefined) flags.push('--stop-signal', config.stopSignal);
    if (!config.preload) flags.push('--no-preload');
    // --cwd is a path, looked up at each start: a child started after a swap runs the new release.
    return [...flags, '--cwd', app.current, '--', command, ...args];
  }

  #onLog(line: LogLine): void {
    const app = this.#host.app(line.id);
    if (line.stream === 'stderr' && line.text.startsWith(EVENT_LINE_PREFIX)) {
      let event: OverseerEvent;
      try {
        event = JSON.parse(line.text.slice(EVENT_LINE_PREFIX.length)) as OverseerEvent;
      } catch {
        this.#host.output({ app: line.id, stream: line.stream, text: line.text });
        return;
      }
      this.#host.emit({ type: 'master-event', app: line.id, event });
      if (event.type === 'master-started' && app) {
        app.masterPid = line.pid;
        app.addresses = event.addresses;
        this.#host.emit({ type: 'app-listening', app: line.id, pid: line.pid, addresses: event.addresses });
      }
      if (event.type === 'child-ready') this.#host.emit({ type: 'app-ready', app: line.id, pid: event.pid, generation: event.generation });
      if (app) for (const listener of [...app.listeners]) listener({ kind: 'event', event });
      return;
    }
    this.#host.output({ app: line.id, stream: line.stream, text: line.text });
  }

  #onState(change: StateChange): void {
    const app = this.#host.app(change.id);
    const { status } = change;
    this.#host.emit({ type: 'app-state', app: change.id, state: change.state, pid: status.pid, exitCode: status.exitCode, signal: status.signal });
    if (!app || change.state === 'running' || change.state === 'starting') return;
    app.masterPid = undefined;
    for (const listener of [...app.listeners]) listener({ kind: 'gone', state: change.state });
    // The supervisor retries failures; a master that ended with code 0 on its own is started
    // again here (after a pause, so a loop cannot spin), unless a command stopped it.
    if (change.state === 'finished' && app.wanted && !this.#host.stopping() && !this.#restartTimers.has(app.name)) {
      this.#restartTimers.set(app.name, setTimeout(() => {
        this.#restartTimers.delete(app.name);
        if (this.#host.stopping() || !app.wanted || this.isActive(app)) return;
        this.start(app).catch((error: unknown) => this.#host.emit({ type: 'app-error', app: app.name, error: describeError(error), code: codeOf(error) }));
      }, FINISHED_RESTART_DELAY));
    }
  }
}

/** Waits for `decide` to settle on the master's news; `gone` and the deadline reject. */
function watchMaster(app: App, timeoutMs: number, what: string, decide: (event: OverseerEvent) => Error | true | undefined, begin: () => void | Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new OverseerError('ERR_OVERSEER_READY_TIMEOUT', `no ${what} within ${timeoutMs} ms`)), timeoutMs);
    const done = (error?: Error) => {
      clearTimeout(timer);
      app.listeners.delete(listener);
      if (error) reject(error);
      else resolve();
    };
    const listener = (news: MasterNews) => {
      if (news.kind === 'gone') {
        done(new OverseerError('ERR_OVERSEER_CHILD_FAILED', `its overseer run process ended (${news.state}) during the ${what}`));
        return;
      }
      const verdict = decide(news.event);
      if (verdict === true) done();
      else if (verdict) done(verdict);
    };
    app.listeners.add(listener);
    const fail = (error: unknown) => done(error instanceof Error ? error : new Error(String(error)));
    try {
      void Promise.resolve(begin()).catch(fail);
    } catch (error) {
      fail(error);
    }
  });
}
