/**
 * One `overseer run` master per pid file and per control socket: each is locked with
 * proper-lockfile (a `<path>.lock` directory, loaded at first use, refreshed while held), so a
 * second master refuses to start, and a master killed with SIGKILL leaves a lock that goes stale.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { askStatusPid } from './control.js';
import { OverseerError, describeError } from '../errors.js';
import type { Log } from '../events.js';
import { loadProperLockfile } from '../upgrade/lock.js';

type ProperLockfile = typeof import('proper-lockfile');

export interface InstanceLockOptions {
  readonly pidFile?: string | undefined;
  readonly control?: string | undefined;
  readonly log: Log;
  /**
   * A lock not refreshed for this long belongs to a dead master and is taken over.
   * @default 5000
   */
  readonly stale?: number;
}

export interface InstanceLock {
  /** Removes the pid file and releases the locks. */
  release(): Promise<void>;
}

export const INSTANCE_LOCK_STALE = 5_000;
/** proper-lockfile may date a fresh lock up to a second ahead (its mtime precision probe). */
const STALE_MARGIN = 1_500;
const RETRY_EVERY = 250;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A master killed moments ago may be a zombie its parent has not reaped yet: signals reach it, but it is dead.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true;
  }
}

async function pidIn(pidFile: string): Promise<number | undefined> {
  const text = await fs.promises.readFile(pidFile, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** The live master behind a held lock: its pid from the pid file or the control socket, 0 when it answers but is unnamed. */
async function holderOf(target: { pidFile?: string | undefined; control?: string | undefined }): Promise<number | undefined> {
  if (target.pidFile !== undefined) {
    const pid = await pidIn(target.pidFile);
    if (pid !== undefined && pid !== process.pid && isAlive(pid)) return pid;
  }
  // 0: something answers on the socket (a master still starting) but gave no pid.
  return target.control === undefined ? undefined : askStatusPid(target.control);
}

async function lockOne(
  lockfile: ProperLockfile,
  path: string,
  what: string,
  holder: () => Promise<number | undefined>,
  options: InstanceLockOptions,
): Promise<() => Promise<void>> {
  const stale = options.stale ?? INSTANCE_LOCK_STALE;
  const deadline = Date.now() + stale + STALE_MARGIN;
  const lockOptions = {
    realpath: false,
    stale,
    retries: 0,
    // The default throws from a timer, which would kill the master and its children's sockets.
    onCompromised: (error: Error) => options.log.warn(`lost the lock ${path}.lock: ${error.message}; another master may start on ${what}`),
  };
  let waiting = false;
  for (;;) {
    try {
      return await lockfile.lock(path, lockOptions);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') {
        throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `cannot lock ${what}: ${describeError(error)}; its directory must exist and be writable by the master`, {
          subject: path,
          cause: error,
        });
      }
    }
    const pid = await holder();
    if (pid !== undefined) {
      throw new OverseerError(
        'ERR_OVERSEER_MASTER_RUNNING',
        pid === 0
          ? `another overseer master already runs with ${what} (it answers on its control socket, still starting); stop it first (overseer ctl stop), or give this one its own`
          : `another overseer master (pid ${pid}) already runs with ${what}; stop it first (overseer ctl stop, or kill -TERM ${pid}), or give this one its own`,
        { subject: path, ...(pid === 0 ? {} : { pid }) },
      );
    }
    // Nobody alive to name: a master killed moments ago, whose lock goes stale by itself.
    if (Date.now() > deadline) {
      throw new OverseerError(
        'ERR_OVERSEER_MASTER_RUNNING',
        `another process holds the lock ${path}.lock of ${what} and keeps it fresh; stop the master that uses it, or give this one its own`,
        { subject: path },
      );
    }
    if (!waiting) options.log.debug(`${path}.lock is held by a master that is gone or still starting; waiting up to ${deadline - Date.now()} ms for it to go stale`);
    waiting = true;
    await delay(RETRY_EVERY);
  }
}

/**
 * Writes the pid file without following links: a fresh temp file beside it (exclusive create,
 * no-follow, a random name), renamed over the pid file. A link planted at the pid file's path
 * is replaced, never written through.
 */
async function writePidFile(pidFile: string): Promise<void> {
  const temp = `${pidFile}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const handle = await fs.promises.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  try {
    await handle.writeFile(`${process.pid}\n`);
    await handle.close();
    await fs.promises.rename(temp, pidFile);
  } catch (error) {
    await handle.close().catch(() => {});
    await fs.promises.unlink(temp).catch(() => {});
    throw error;
  }
}

/** Locks the pid file and the control socket path, then writes this process's pid into the pid file. */
export async function lockInstance(options: InstanceLockOptions): Promise<InstanceLock> {
  const { pidFile, control } = options;
  if (pidFile === undefined && control === undefined) return { release: async () => {} };
  const lockfile = await loadProperLockfile();
  const releases: Array<() => Promise<void>> = [];
  const release = async () => {
    if (pidFile !== undefined && (await pidIn(pidFile)) === process.pid) await fs.promises.unlink(pidFile).catch(() => {});
    for (const unlock of releases.splice(0).reverse()) await unlock().catch(() => {});
  };
  try {
    if (pidFile !== undefined) {
      releases.push(await lockOne(lockfile, pidFile, `the pid file ${pidFile}`, () => holderOf({ pidFile, control }), options));
      await writePidFile(pidFile);
    }
    if (control !== undefined) {
      releases.push(await lockOne(lockfile, control, `the control socket ${control}`, () => holderOf({ pidFile, control }), options));
    }
  } catch (error) {
    await release();
    throw error;
  }
  return { release };
}
