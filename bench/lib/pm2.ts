/**
 * A private PM2 daemon for one benchmark section: PM2_HOME in a fresh temp dir, driven through
 * bench/apps/pm2-driver.cjs, and always killed at the end (close(), or the exit hook on failure).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchDir, isAlive, onExit, root, spawnTracked } from './procs.ts';

const pm2Bin = path.join(root, 'node_modules/pm2/bin/pm2');

function daemonPidOf(home: string): number {
  try {
    return Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8').trim()) || -1;
  } catch {
    return -1;
  }
}

/** `pm2 kill` for this PM2_HOME (only if its daemon runs), then SIGKILL by pid if it is still there, then remove the home. */
function killDaemonSync(home: string): void {
  const pid = daemonPidOf(home);
  if (pid > 0 && isAlive(pid)) {
    try {
      execFileSync(process.execPath, [pm2Bin, 'kill'], { env: { ...process.env, PM2_HOME: home }, stdio: 'ignore', timeout: 20_000 });
    } catch {
      // Fall through to the pid.
    }
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  fs.rmSync(home, { recursive: true, force: true });
}

export interface Pm2Reply {
  readonly data: unknown;
  readonly at: number;
}

export class Pm2 {
  readonly home: string;
  readonly #driver: ChildProcess;
  readonly #pending = new Map<number, { resolve: (reply: Pm2Reply) => void; reject: (error: Error) => void }>();
  #nextId = 1;
  readonly busEvents: Array<{ event: string; pmId: number; at: number }> = [];

  private constructor(home: string, driver: ChildProcess) {
    this.home = home;
    this.#driver = driver;
    driver.on('message', (message: { id?: number; error?: string; data?: unknown; at?: number; bus?: { event: string; pmId: number; at: number } }) => {
      if (message.bus) this.busEvents.push(message.bus);
      if (message.id === undefined) return;
      const waiter = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.error) waiter?.reject(new Error(`pm2: ${message.error}`));
      else waiter?.resolve({ data: message.data, at: message.at ?? Date.now() });
    });
  }

  static async start(cpus?: string): Promise<Pm2> {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-bench-pm2-'));
    onExit(() => killDaemonSync(home));
    const args = [path.join(benchDir, 'apps/pm2-driver.cjs')];
    const [command, commandArgs] = cpus === undefined ? [process.execPath, args] : ['taskset', ['-c', cpus, process.execPath, ...args]];
    const driver = spawnTracked(command, commandArgs, {
      env: { ...process.env, PM2_HOME: home },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      driver.on('message', (message: { ready?: boolean; fatal?: string }) => {
        if (message.ready) resolve();
        if (message.fatal) reject(new Error(`pm2: ${message.fatal}`));
      });
      driver.once('exit', (code) => reject(new Error(`pm2 driver exited (${code})`)));
    });
    return new Pm2(home, driver);
  }

  daemonPid(): number {
    return daemonPidOf(this.home);
  }

  call(cmd: string, body: Record<string, unknown>, timeoutMs = 60_000): Promise<Pm2Reply> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`pm2 ${cmd} took over ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.#driver.send({ id, cmd, ...body });
    });
  }

  /** Kills the daemon (always: through the API, then `pm2 kill`, then by pid) and removes PM2_HOME. */
  async close(): Promise<void> {
    try {
      if (this.#driver.connected) await this.call('kill', {}, 20_000);
    } catch {
      // The sync path below makes sure.
    }
    if (this.#driver.exitCode === null) this.#driver.kill('SIGKILL');
    killDaemonSync(this.home);
  }
}
