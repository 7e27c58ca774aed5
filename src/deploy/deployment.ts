/**
 * `overseer deploy DIR`: keeps every application folder of DIR running (gexe's layout: current/,
 * release/, archive/, command/ beside an app.json) under an `overseer run` master each, and acts
 * on the files dropped into command/, one at a time per app: stop, start, release and rollback.
 * Going live is go-live.ts; the masters are app-master.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { srcPath } from '../src-dir.js';
import { readAppConfig, APP_FILE } from './app-config.js';
import { AppMasters } from './app-master.js';
import { DEPLOY_DEFAULTS, codeOf, newApp, type App, type DeployOptions, type EventBody, type DeployEvent } from './app.js';
import { checkAppFolders, checkFolder, prepareAppFolders, writeReport } from './folders.js';
import { release, rollback, type GoLiveHost } from './go-live.js';
import { OverseerError, describeError, isOverseerError } from '../errors.js';

export { DEPLOY_DEFAULTS, type DeployEvent, type DeployOptions } from './app.js';

export const COMMANDS = ['stop', 'start', 'release', 'rollback'] as const;
export type DeployCommand = (typeof COMMANDS)[number];

interface Identity {
  readonly ino: number;
  readonly mtimeMs: number;
}

export class Deployment {
  readonly #options: DeployOptions;
  readonly #dir: string;
  readonly #apps = new Map<string, App>();
  readonly #ignored = new Set<string>();
  readonly #masters: AppMasters;
  readonly #host: GoLiveHost;
  #pollTimer: NodeJS.Timeout | undefined;
  #dirWatcher: fs.FSWatcher | undefined;
  #scanScheduled: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #started = false;

  constructor(options: DeployOptions) {
    this.#options = options;
    this.#dir = path.resolve(options.dir);
    const stopping = () => this.#stopping !== undefined;
    const emit = (body: EventBody) => this.#emit(body);
    this.#masters = new AppMasters({
      app: (name) => this.#apps.get(name),
      emit,
      output: (line) => options.onOutput?.(line),
      stopping,
    }, options.cliPath ?? srcPath('cli/main.js'));
    this.#host = { options, masters: this.#masters, emit, stopping };
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
    if (options.kill) void this.#masters.stopAll({ kill: true });
    this.#stopping ??= (async () => {
      clearInterval(this.#pollTimer);
      clearTimeout(this.#scanScheduled);
      this.#dirWatcher?.close();
      for (const app of this.#apps.values()) app.watcher?.close();
      await this.#masters.stopAll();
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
      app.queue = app.queue.then(() => this.#masters.stop(app)).catch(() => {});
    }
    for (const app of this.#apps.values()) await this.#scanCommands(app);
  }

  async #addApp(name: string): Promise<void> {
    const app = newApp(this.#dir, name);
    this.#apps.set(name, app);
    this.#emit({ type: 'app-found', app: name });
    await prepareAppFolders(app);
    // A symlinked folder is said now; the app runs on, and commands that need it are refused.
    await checkAppFolders(app).catch((error: unknown) => this.#reportUnsafe(app, error));
    try {
      await checkFolder(app.command);
      app.watcher = fs.watch(app.command, () => this.#scheduleScan());
      app.watcher.on('error', () => app.watcher?.close());
    } catch {
      // The poll still sees the commands (and says once what is wrong with command/).
    }
    try {
      // Read first, so a broken app.json is reported now, not at the first command.
      await readAppConfig(app.dir);
      if (fs.existsSync(app.current)) await this.#masters.start(app);
      else this.#emit({ type: 'release-waiting', app: name, why: 'there is no current/ yet; stage the first release in release/ and drop command/release' });
    } catch (error) {
      this.#emit({ type: 'app-error', app: name, error: describeError(error), code: codeOf(error) });
    }
  }

  /** Reports an unsafe folder once (until it is fixed), as an app-error. */
  #reportUnsafe(app: App, error: unknown): void {
    const key = isOverseerError(error) ? (error.subject ?? error.message) : describeError(error);
    if (app.reported.has(key)) return;
    app.reported.add(key);
    this.#emit({ type: 'app-error', app: app.name, error: describeError(error), code: codeOf(error) });
  }

  async #scanCommands(app: App): Promise<void> {
    let entries: fs.Dirent[];
    try {
      // Never through a link: its target could be anyone's folder.
      await checkFolder(app.command);
      app.reported.delete(app.command);
      entries = await fs.promises.readdir(app.command, { withFileTypes: true });
    } catch (error) {
      if (isOverseerError(error, 'ERR_OVERSEER_UNSAFE_FOLDER')) this.#reportUnsafe(app, error);
      return;
    }
    const found: Array<{ name: string; identity: Identity }> = [];
    for (const entry of entries) {
      // Dot files are a deployer's temporaries; .failed files are our reports.
      if (!entry.isFile() || entry.name.startsWith('.') || entry.name.endsWith('.failed') || app.busy.has(entry.name)) continue;
      const stat = await fs.promises.lstat(path.join(app.command, entry.name)).catch(() => undefined);
      if (stat?.isFile()) found.push({ name: entry.name, identity: { ino: stat.ino, mtimeMs: stat.mtimeMs } });
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
      // command/ is looked at again: a link put in its place since the scan is not written through.
      await checkFolder(app.command).then(() => writeReport(`${file}.failed`, `${codeOf(error)}: ${describeError(error)}\n`)).catch(() => {});
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
        if (!this.#masters.isActive(app)) return 'already stopped';
        await this.#masters.stop(app);
        return 'stopped';
      case 'start':
        app.wanted = true;
        if (this.#masters.isActive(app)) return 'already running';
        await this.#masters.start(app);
        return 'started';
      case 'release':
        return release(this.#host, app);
      case 'rollback':
        return rollback(this.#host, app);
      default:
        throw new OverseerError(
          'ERR_OVERSEER_UNKNOWN_COMMAND',
          `command/${name} names no command; drop one of ${COMMANDS.map((command) => `command/${command}`).join(', ')}`,
          { subject: path.join(app.command, name) },
        );
    }
  }
}

/**
 * Removes a handled command file, unless the deployer dropped a new one (a new inode) meanwhile.
 * Touching the same file again while it waits asks for the same thing, so that one goes.
 */
async function removeIfUnchanged(file: string, identity: Identity): Promise<void> {
  const stat = await fs.promises.lstat(file).catch(() => undefined);
  if (stat && stat.ino === identity.ino) await fs.promises.rm(file, { force: true });
}
