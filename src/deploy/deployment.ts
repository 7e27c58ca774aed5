/**
 * `overseer deploy DIR`: keeps every application folder of DIR running (gexe's layout: current/,
 * release/, archive/, command/ beside an app.json) under an `overseer run` master each, and acts
 * on the files dropped into command/: stop, start, release (verify, swap folders, ready-first
 * handoff, roll back when the new release does not get ready) and rollback.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readAppConfig, APP_FILE, type AppConfig } from './app-config.js';
import {
  FAILED_SUFFIX, READY_MARKER, ROLLED_BACK_SUFFIX, newArchivePath, newestGoodArchive, pruneArchives, releaseCompleteness, verifyRelease,
} from './release.js';
import { OverseerError, describeError, isOverseerError } from '../errors.js';
import type { OverseerEvent } from '../events.js';
import { EVENT_LINE_PREFIX } from '../protocol.js';
import { Supervisor, type LogLine, type ProcessState, type StateChange } from '../supervisor/supervisor.js';

export const DEPLOY_DEFAULTS = Object.freeze({ archives: 5, poll: 1000 });

export const COMMANDS = ['stop', 'start', 'release', 'rollback'] as const;
export type DeployCommand = (typeof COMMANDS)[number];

export interface DeployOptions {
  /** The deployment folder: one sub-folder per application. */
  readonly dir: string;
  /** Archives kept per app (app.json `archives` overrides it). @default 5 */
  readonly archives?: number;
  /** A release/ without the .ready marker counts as complete once nothing in it changed for this many ms. @default off */
  readonly quietPeriod?: number;
  /** How often command/ folders (and DIR, for new apps) are looked at besides fs.watch. @default 1000 */
  readonly poll?: number;
  /** The `overseer` command to start masters with. @default dist/src/cli/main.js beside this module */
  readonly cliPath?: string;
  readonly onEvent?: (event: DeployEvent) => void;
  /** Each line an app's master or its children print. */
  readonly onOutput?: (line: { readonly app: string; readonly stream: 'stdout' | 'stderr'; readonly text: string }) => void;
}

export type DeployEvent = { readonly at: number; readonly app: string } & (
  | { readonly type: 'app-found' }
  | { readonly type: 'app-error'; readonly error: string; readonly code: string }
  | { readonly type: 'app-state'; readonly state: ProcessState; readonly pid: number | null; readonly exitCode: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly type: 'app-listening'; readonly pid: number; readonly addresses: readonly string[] }
  | { readonly type: 'app-ready'; readonly pid: number; readonly generation: number }
  | { readonly type: 'release-waiting'; readonly why: string }
  | { readonly type: 'release-verified'; readonly checked: number; readonly keyId: string | undefined }
  | { readonly type: 'archives-pruned'; readonly removed: readonly string[] }
  | { readonly type: 'command-done'; readonly command: string; readonly detail: string }
  | { readonly type: 'command-failed'; readonly command: string; readonly error: string; readonly code: string }
  | { readonly type: 'master-event'; readonly event: OverseerEvent }
);

type EventBody = DeployEvent extends infer E ? (E extends DeployEvent ? Omit<E, 'at'> : never) : never;

/** What an app's master tells a waiting operation: one of its events, or that it is gone. */
type MasterNews = { readonly kind: 'event'; readonly event: OverseerEvent } | { readonly kind: 'gone'; readonly state: ProcessState };

interface App {
  readonly name: string;
  readonly dir: string;
  readonly current: string;
  readonly release: string;
  readonly archive: string;
  readonly command: string;
  /** False after a stop command: the app stays down until start, release or rollback. */
  wanted: boolean;
  /** Operations on this app run one at a time, in order. */
  queue: Promise<void>;
  /** Command files queued or being handled. */
  readonly busy: Set<string>;
  /** The last release-waiting reason reported, so it is said once. */
  waiting: string | undefined;
  /** Pid of the master once it reported master-started (it handles the restart signal from then). */
  masterPid: number | undefined;
  readonly listeners: Set<(news: MasterNews) => void>;
  watcher: fs.FSWatcher | undefined;
}

interface Identity {
  readonly ino: number;
  readonly mtimeMs: number;
}

const ACTIVE: ReadonlySet<ProcessState> = new Set(['starting', 'running', 'stopping', 'backoff']);
const DEFAULT_READY_TIMEOUT = 30_000;
const DEFAULT_TERMINATE_TIMEOUT = 30_000;
/** Extra time the supervisor allows a master to stop after its children's drain deadline. */
const STOP_MARGIN = 5_000;
/** Waits on a master beyond its own deadlines before an operation gives up on it. */
const WAIT_MARGIN = 10_000;
const FINISHED_RESTART_DELAY = 1_000;

export class Deployment {
  readonly #options: DeployOptions;
  readonly #dir: string;
  readonly #cliPath: string;
  readonly #apps = new Map<string, App>();
  readonly #ignored = new Set<string>();
  readonly #supervisor = new Supervisor();
  readonly #restartTimers = new Map<string, NodeJS.Timeout>();
  #pollTimer: NodeJS.Timeout | undefined;
  #dirWatcher: fs.FSWatcher | undefined;
  #scanScheduled: NodeJS.Timeout | undefined;
  #stopping: Promise<void> | undefined;
  #started = false;

  constructor(options: DeployOptions) {
    this.#options = options;
    this.#dir = path.resolve(options.dir);
    this.#cliPath = options.cliPath ?? fileURLToPath(new URL('../cli/main.js', import.meta.url));
    this.#supervisor.on('log', (line) => this.#onLog(line));
    this.#supervisor.on('state', (change) => this.#onState(change));
  }

  /** Finds the apps, starts them, and begins watching their command/ folders. */
  async start(): Promise<void> {
    if (this.#started) throw new OverseerError('ERR_OVERSEER_ALREADY_RUNNING', `overseer deploy ${this.#dir} was already started`);
    this.#started = true;
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(this.#dir);
    } catch (error) {
      throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `the deployment folder ${this.#dir} cannot be read (${describeError(error)}); create it with one folder per application`, { subject: this.#dir, cause: error });
    }
    if (!stat.isDirectory()) throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${this.#dir} is not a folder; give overseer deploy the folder that holds the application folders`, { subject: this.#dir });
    await this.#scan();
    try {
      this.#dirWatcher = fs.watch(this.#dir, () => this.#scheduleScan());
      this.#dirWatcher.on('error', () => this.#dirWatcher?.close());
    } catch {
      // The poll finds new apps too.
    }
    this.#pollTimer = setInterval(() => void this.#scan(), this.#options.poll ?? DEPLOY_DEFAULTS.poll);
  }

  /** The application names, in the order they were found. */
  apps(): string[] {
    return [...this.#apps.keys()];
  }

  /** Looks at DIR and every command/ folder now (as SIGHUP does in the CLI). */
  rescan(): Promise<void> {
    return this.#scan();
  }

  /**
   * Stops every app gracefully (each master drains its children) and stops watching. With
   * `kill`, SIGKILL at once (a second Ctrl-C). Resolves when every master is gone.
   */
  stop(options: { readonly kill?: boolean } = {}): Promise<void> {
    if (options.kill) void this.#supervisor.stopAll({ kill: true });
    this.#stopping ??= (async () => {
      clearInterval(this.#pollTimer);
      clearTimeout(this.#scanScheduled);
      for (const timer of this.#restartTimers.values()) clearTimeout(timer);
      this.#dirWatcher?.close();
      for (const app of this.#apps.values()) app.watcher?.close();
      await this.#supervisor.stopAll();
      // Operations under way see their masters go and finish (a release rolls its folders back).
      await Promise.all([...this.#apps.values()].map((app) => app.queue));
    })();
    return this.#stopping;
  }

  #emit(body: EventBody): void {
    const event = { ...body, at: Date.now() } as DeployEvent;
    try {
      this.#options.onEvent?.(event);
    } catch (error) {
      process.nextTick(() => {
        throw error;
      });
    }
  }

  #scheduleScan(): void {
    if (this.#stopping || this.#scanScheduled) return;
    // fs.watch reports a copy as a burst of changes: one look after it settles a little.
    this.#scanScheduled = setTimeout(() => {
      this.#scanScheduled = undefined;
      void this.#scan();
    }, 25);
  }

  #scanning: Promise<void> | undefined;

  /** Adds new application folders, forgets removed ones, and queues the command files found. */
  #scan(): Promise<void> {
    this.#scanning ??= this.#scanOnce().finally(() => (this.#scanning = undefined));
    return this.#scanning;
  }

  async #scanOnce(): Promise<void> {
    if (this.#stopping) return;
    const entries = await fs.promises.readdir(this.#dir, { withFileTypes: true }).catch(() => []);
    const names = new Set(entries.filter((entry) => entry.isDirectory() && !entry.name.startsWith('.')).map((entry) => entry.name));
    for (const name of [...names].sort()) {
      if (this.#apps.has(name) || this.#stopping) continue;
      if (!fs.existsSync(path.join(this.#dir, name, APP_FILE))) {
        if (!this.#ignored.has(name)) {
          this.#ignored.add(name);
          this.#emit({ type: 'app-error', app: name, error: `${path.join(this.#dir, name)} has no ${APP_FILE}; it is not an application folder and is left alone`, code: 'ERR_OVERSEER_INVALID_CONFIG' });
        }
        continue;
      }
      this.#ignored.delete(name);
      await this.#addApp(name).catch((error: unknown) => {
        this.#emit({ type: 'app-error', app: name, error: describeError(error), code: codeOf(error) });
      });
    }
    for (const app of [...this.#apps.values()]) {
      if (names.has(app.name) && fs.existsSync(path.join(app.dir, APP_FILE))) continue;
      app.watcher?.close();
      this.#apps.delete(app.name);
      this.#emit({ type: 'app-error', app: app.name, error: `${app.dir} or its ${APP_FILE} is gone; stopping the app`, code: 'ERR_OVERSEER_INVALID_CONFIG' });
      app.queue = app.queue.then(async () => {
        if (this.#supervisor.ids().includes(app.name)) await this.#supervisor.stop(app.name);
      }).catch(() => {});
    }
    for (const app of this.#apps.values()) await this.#scanCommands(app);
  }

  async #addApp(name: string): Promise<void> {
    const dir = path.join(this.#dir, name);
    const app: App = {
      name, dir,
      current: path.join(dir, 'current'),
      release: path.join(dir, 'release'),
      archive: path.join(dir, 'archive'),
      command: path.join(dir, 'command'),
      wanted: true, queue: Promise.resolve(), busy: new Set(), waiting: undefined, masterPid: undefined,
      listeners: new Set(), watcher: undefined,
    };
    this.#apps.set(name, app);
    this.#emit({ type: 'app-found', app: name });
    for (const folder of [app.release, app.archive, app.command]) await fs.promises.mkdir(folder, { recursive: true });
    try {
      app.watcher = fs.watch(app.command, () => this.#scheduleScan());
      app.watcher.on('error', () => app.watcher?.close());
    } catch {
      // The poll still sees the commands.
    }
    try {
      // Read first, so a broken app.json is reported now, not at the first command.
      await readAppConfig(app.dir);
      if (fs.existsSync(app.current)) await this.#startApp(app);
      else this.#emit({ type: 'release-waiting', app: name, why: 'there is no current/ yet; stage the first release in release/ and drop command/release' });
    } catch (error) {
      this.#emit({ type: 'app-error', app: name, error: describeError(error), code: codeOf(error) });
    }
  }

  async #scanCommands(app: App): Promise<void> {
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(app.command, { withFileTypes: true });
    } catch {
      return;
    }
    const found: Array<{ name: string; identity: Identity }> = [];
    for (const entry of entries) {
      // Dot files are a deployer's temporaries; .failed files are our reports.
      if (!entry.isFile() || entry.name.startsWith('.') || entry.name.endsWith('.failed') || app.busy.has(entry.name)) continue;
      const stat = await fs.promises.stat(path.join(app.command, entry.name)).catch(() => undefined);
      if (stat) found.push({ name: entry.name, identity: { ino: stat.ino, mtimeMs: stat.mtimeMs } });
    }
    found.sort((a, b) => a.identity.mtimeMs - b.identity.mtimeMs || a.name.localeCompare(b.name));
    for (const { name, identity } of found) {
      if (this.#stopping) return;
      app.busy.add(name);
      app.queue = app.queue.then(() => this.#handle(app, name, identity));
    }
  }

  async #handle(app: App, name: string, identity: Identity): Promise<void> {
    const file = path.join(app.command, name);
    try {
      if (this.#stopping) return;
      const detail = await this.#run(app, name);
      // A release still being copied: the command stays, and the next look tries again.
      if (detail === undefined) return;
      await removeIfUnchanged(file, identity);
      await fs.promises.rm(`${file}.failed`, { force: true });
      this.#emit({ type: 'command-done', app: app.name, command: name, detail });
    } catch (error) {
      await writeAtomically(`${file}.failed`, `${codeOf(error)}: ${describeError(error).replace(/^overseer: /, '')}\n`).catch(() => {});
      await removeIfUnchanged(file, identity);
      this.#emit({ type: 'command-failed', app: app.name, command: name, error: describeError(error), code: codeOf(error) });
    } finally {
      app.busy.delete(name);
    }
  }

  /** Runs one command; returns what it did, or undefined when it must wait (a release being copied). */
  async #run(app: App, name: string): Promise<string | undefined> {
    switch (name as DeployCommand) {
      case 'stop':
        app.wanted = false;
        if (!this.#isActive(app)) return 'already stopped';
        await this.#supervisor.stop(app.name);
        return 'stopped';
      case 'start':
        app.wanted = true;
        if (this.#isActive(app)) return 'already running';
        await this.#startApp(app);
        return 'started';
      case 'release':
        return this.#release(app);
      case 'rollback':
        return this.#rollback(app);
      default:
        throw new OverseerError(
          'ERR_OVERSEER_UNKNOWN_COMMAND',
          `command/${name} names no command; drop one of ${COMMANDS.map((command) => `command/${command}`).join(', ')}`,
          { subject: path.join(app.command, name) },
        );
    }
  }

  async #release(app: App): Promise<string | undefined> {
    const config = await readAppConfig(app.dir);
    const completeness = await releaseCompleteness(app.release, config.quietPeriod ?? this.#options.quietPeriod);
    if (!completeness.complete) {
      // Said once per reason; the quiet period's countdown is not a new reason.
      const reason = completeness.why.replace(/\d+ ms ago/, '');
      if (app.waiting !== reason) this.#emit({ type: 'release-waiting', app: app.name, why: completeness.why });
      app.waiting = reason;
      return undefined;
    }
    app.waiting = undefined;
    const verification = await verifyRelease(app.release, { publicKey: config.publicKey, label: app.name });
    this.#emit({ type: 'release-verified', app: app.name, checked: verification.checked, keyId: verification.keyId });
    const { archived } = await this.#goLive(app, config, app.release, '', 'the release');
    return `release is live${archived ? `; the previous one is archive/${path.basename(archived)}` : ''}`;
  }

  async #rollback(app: App): Promise<string> {
    const config = await readAppConfig(app.dir);
    const target = await newestGoodArchive(app.archive);
    if (target === undefined) {
      throw new OverseerError(
        'ERR_OVERSEER_NO_ARCHIVE',
        `archive/ holds no earlier release to roll back to (failed and rolled-back ones are never taken); stage one in release/ and drop command/release`,
        { subject: app.archive },
      );
    }
    const { archived } = await this.#goLive(app, config, path.join(app.archive, target), ROLLED_BACK_SUFFIX, `archive/${target}`);
    return `archive/${target} is live again${archived ? `; the release it replaced is archive/${path.basename(archived)}` : ''}`;
  }

  /**
   * Makes `source` the current release: current/ → archive/, source → current/, then a
   * ready-first handoff (or a start, when the app is not running). When the new release does
   * not get ready, its folder goes to archive/…-failed and the previous one comes back, still
   * serving. Throws ERR_OVERSEER_ROLLED_BACK then.
   */
  async #goLive(app: App, config: AppConfig, source: string, oldSuffix: string, what: string): Promise<{ archived: string | undefined }> {
    if (this.#stopping) throw new OverseerError('ERR_OVERSEER_CHILD_FAILED', 'overseer deploy is stopping');
    const live = await this.#waitLive(app);
    if (!live && this.#isActive(app)) await this.#supervisor.stop(app.name);
    let archived: string | undefined;
    if (fs.existsSync(app.current)) {
      archived = newArchivePath(app.archive, oldSuffix);
      await fs.promises.rename(app.current, archived);
    }
    try {
      await fs.promises.rename(source, app.current);
    } catch (error) {
      if (archived) await fs.promises.rename(archived, app.current);
      throw new OverseerError('ERR_OVERSEER_SWAP_FAILED', `cannot move ${what} into current/: ${describeError(error)}`, { subject: source, cause: error });
    }
    if (source === app.release) {
      await fs.promises.mkdir(app.release, { recursive: true });
      await fs.promises.rm(path.join(app.current, READY_MARKER), { force: true });
    }
    app.wanted = true;
    try {
      if (live) await this.#handoff(app, config);
      else await this.#startAndWaitReady(app, config);
    } catch (error) {
      const failed = newArchivePath(app.archive, FAILED_SUFFIX);
      if (!live && this.#isActive(app)) await this.#supervisor.stop(app.name);
      await fs.promises.rename(app.current, failed);
      if (archived) await fs.promises.rename(archived, app.current);
      let after = 'the previous release is current again';
      if (!archived) after = 'there is no previous release to go back to';
      else if (live && app.masterPid !== undefined) after += ' and kept serving';
      else if (!this.#stopping && !this.#isActive(app)) {
        after += ' and was started again';
        await this.#startApp(app).catch((startError: unknown) => {
          after = `the previous release is current again, but it could not be started: ${describeError(startError)}`;
        });
      }
      await this.#prune(app, config);
      throw new OverseerError(
        'ERR_OVERSEER_ROLLED_BACK',
        `${what} did not get ready (${describeError(error).replace(/^overseer: /, '')}); ${after}; the failed one is archive/${path.basename(failed)}`,
        { subject: failed, cause: error },
      );
    }
    await this.#prune(app, config);
    return { archived: archived && fs.existsSync(archived) ? archived : undefined };
  }

  async #prune(app: App, config: AppConfig): Promise<void> {
    const removed = await pruneArchives(app.archive, config.archives ?? this.#options.archives ?? DEPLOY_DEFAULTS.archives);
    if (removed.length > 0) this.#emit({ type: 'archives-pruned', app: app.name, removed });
  }

  #isActive(app: App): boolean {
    return this.#supervisor.ids().includes(app.name) && ACTIVE.has(this.#supervisor.status(app.name).state);
  }

  /** True once the app's master handles the restart signal; waits while it is still starting. */
  async #waitLive(app: App): Promise<boolean> {
    if (app.masterPid !== undefined) return true;
    if (!this.#isActive(app)) return false;
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

  /** Waits for `decide` to settle on the master's news; `gone` and the deadline reject. */
  #watchMaster(app: App, timeoutMs: number, what: string, decide: (event: OverseerEvent) => Error | true | undefined, begin: () => void | Promise<void>): Promise<void> {
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

  /** The restart signal to the master (only the master: its children run in groups of their own). */
  #handoff(app: App, config: AppConfig): Promise<void> {
    const timeout = (config.readyTimeout ?? DEFAULT_READY_TIMEOUT) + (config.terminateTimeout ?? DEFAULT_TERMINATE_TIMEOUT) + WAIT_MARGIN;
    return this.#watchMaster(app, timeout, 'handoff', (event) => {
      if (event.type === 'handoff-completed' && event.reason === 'signal') return true;
      if (event.type === 'handoff-failed' && event.reason === 'signal') return new OverseerError('ERR_OVERSEER_CHILD_FAILED', event.error.replace(/^overseer: /, ''));
      return undefined;
    }, () => {
      const pid = app.masterPid;
      if (pid === undefined) throw new OverseerError('ERR_OVERSEER_PROCESS_NOT_RUNNING', 'its overseer run process is not running');
      process.kill(pid, 'SIGUSR2');
    });
  }

  /** Starts the app's master and waits for its first child to be ready. */
  #startAndWaitReady(app: App, config: AppConfig): Promise<void> {
    const timeout = (config.readyTimeout ?? DEFAULT_READY_TIMEOUT) + WAIT_MARGIN;
    let readyChild = 0;
    return this.#watchMaster(app, timeout, 'start', (event) => {
      if (event.type === 'child-forked' && readyChild === 0) readyChild = event.pid;
      if (event.type === 'child-ready' && event.pid === readyChild) return true;
      if (event.type === 'child-exited' && event.pid === readyChild) {
        return new OverseerError('ERR_OVERSEER_CHILD_FAILED', `its first child exited (${event.signal ?? `code ${event.code}`}) before it was ready`);
      }
      return undefined;
    }, () => this.#startApp(app));
  }

  /** Starts the app's `overseer run` master under the supervisor, from a fresh read of app.json. */
  async #startApp(app: App): Promise<void> {
    if (this.#stopping) throw new OverseerError('ERR_OVERSEER_CHILD_FAILED', 'overseer deploy is stopping');
    const config = await readAppConfig(app.dir);
    if (!fs.existsSync(app.current)) {
      throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${app.name} has no current/ folder; stage a release in release/ and drop command/release`, { subject: app.current });
    }
    if (this.#isActive(app)) return;
    if (this.#supervisor.ids().includes(app.name)) this.#supervisor.remove(app.name);
    const terminateTimeout = config.terminateTimeout ?? DEFAULT_TERMINATE_TIMEOUT;
    this.#supervisor.add(app.name, process.execPath, this.#masterArgs(app, config), {
      // The app folder, not current/: it keeps its path and inode across releases.
      cwd: app.dir,
      env: config.env,
      retries: Infinity,
      retryDelay: 1_000,
      maxRetryDelay: 30_000,
      stopTimeout: terminateTimeout + STOP_MARGIN,
    });
    void this.#supervisor.supervise(app.name).catch(() => {});
  }

  #masterArgs(app: App, config: AppConfig): string[] {
    const [command, ...args] = config.command;
    const flags = [this.#cliPath, 'run', '--events', '--respawn'];
    for (const listen of config.listen) flags.push('--listen', listen);
    if (config.ready.kind === 'delay') flags.push('--ready-delay', String(config.ready.ms));
    if (config.readyTimeout !== undefined) flags.push('--ready-timeout', String(config.readyTimeout));
    if (config.terminateTimeout !== undefined) flags.push('--terminate-timeout', String(config.terminateTimeout));
    if (config.stopSignal !== undefined) flags.push('--stop-signal', config.stopSignal);
    // --cwd is a path, looked up at each start: a child started after a swap runs the new release.
    return [...flags, '--cwd', app.current, '--', command, ...args];
  }

  #onLog(line: LogLine): void {
    const app = this.#apps.get(line.id);
    if (line.stream === 'stderr' && line.text.startsWith(EVENT_LINE_PREFIX)) {
      let event: OverseerEvent;
      try {
        event = JSON.parse(line.text.slice(EVENT_LINE_PREFIX.length)) as OverseerEvent;
      } catch {
        this.#options.onOutput?.({ app: line.id, stream: line.stream, text: line.text });
        return;
      }
      this.#emit({ type: 'master-event', app: line.id, event });
      if (event.type === 'master-started' && app) {
        app.masterPid = line.pid;
        this.#emit({ type: 'app-listening', app: line.id, pid: line.pid, addresses: event.addresses });
      }
      if (event.type === 'child-ready') this.#emit({ type: 'app-ready', app: line.id, pid: event.pid, generation: event.generation });
      if (app) for (const listener of [...app.listeners]) listener({ kind: 'event', event });
      return;
    }
    this.#options.onOutput?.({ app: line.id, stream: line.stream, text: line.text });
  }

  #onState(change: StateChange): void {
    const app = this.#apps.get(change.id);
    const { status } = change;
    this.#emit({ type: 'app-state', app: change.id, state: change.state, pid: status.pid, exitCode: status.exitCode, signal: status.signal });
    if (!app || change.state === 'running' || change.state === 'starting') return;
    app.masterPid = undefined;
    for (const listener of [...app.listeners]) listener({ kind: 'gone', state: change.state });
    // The supervisor retries failures; a master that ended with code 0 on its own is started
    // again here (after a pause, so a loop cannot spin), unless a command stopped it.
    if (change.state === 'finished' && app.wanted && !this.#stopping && !this.#restartTimers.has(app.name)) {
      this.#restartTimers.set(app.name, setTimeout(() => {
        this.#restartTimers.delete(app.name);
        if (this.#stopping || !app.wanted || this.#isActive(app)) return;
        this.#startApp(app).catch((error: unknown) => this.#emit({ type: 'app-error', app: app.name, error: describeError(error), code: codeOf(error) }));
      }, FINISHED_RESTART_DELAY));
    }
  }
}

function codeOf(error: unknown): string {
  return isOverseerError(error) ? error.code : ((error as NodeJS.ErrnoException | undefined)?.code ?? 'ERR_OVERSEER_UNKNOWN');
}

/**
 * Removes a handled command file, unless the deployer dropped a new one (a new inode) meanwhile.
 * Touching the same file again while it waits asks for the same thing, so that one goes.
 */
async function removeIfUnchanged(file: string, identity: Identity): Promise<void> {
  const stat = await fs.promises.stat(file).catch(() => undefined);
  if (stat && stat.ino === identity.ino) await fs.promises.rm(file, { force: true });
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await fs.promises.writeFile(temp, text);
  await fs.promises.rename(temp, file);
}
