/**
 * The on-disk bundle lock: one swap or restore of a bundle at a time, across processes.
 * A `<target>.lock` directory made by proper-lockfile (loaded at first use: +5 MB RSS), kept
 * fresh while held, so a holder killed with SIGKILL leaves a lock that goes stale by itself.
 */
import fs from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { OverseerError } from '../errors.js';

type ProperLockfile = typeof import('proper-lockfile');

export interface BundleLockOptions {
  /**
   * A lock whose holder stopped refreshing it for this long is stale and taken over.
   * proper-lockfile raises anything below 2000 to 2000.
   * @default 10000
   */
  readonly stale?: number;
  /**
   * Attempts after the first while another process holds the lock, backing off from 50 ms to
   * 500 ms. The default waits about 3.75 s: enough to take over a lock with the smallest
   * `stale` whose holder was killed, even though proper-lockfile first dates a new lock up to
   * a second into the future (its mtime precision probe).
   * @default 10
   */
  readonly retries?: number;
}

export const DEFAULT_LOCK_STALE = 10_000;
const DEFAULT_LOCK_RETRIES = 10;

let loading: Promise<ProperLockfile> | undefined;

/** proper-lockfile, loaded once at first use (+5 MB RSS, so never at start). */
export function loadProperLockfile(): Promise<ProperLockfile> {
  loading ??= import('proper-lockfile').then(
    (module) => module.default ?? module,
    (error: unknown) => {
      loading = undefined;
      throw error;
    },
  );
  return loading;
}

/** Retries only while the lock is held elsewhere; any other failure (EACCES, ENOENT) is final. */
async function acquire(
  lock: ProperLockfile['lock'],
  targetPath: string,
  lockOptions: Parameters<ProperLockfile['lock']>[1],
  retries: number,
): Promise<() => Promise<void>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await lock(targetPath, lockOptions);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED' || attempt >= retries) throw error;
    }
    await delay(Math.min(50 * 2 ** attempt, 500));
  }
}

/**
 * Runs `fn` while holding the lock on `targetPath` (a real path: symlinks are not resolved),
 * then releases it, also when `fn` throws. Rejects with ERR_OVERSEER_LOCKED when another
 * process still holds it after the retries. `fn` gets a signal that aborts if the lock is lost
 * while held (the event loop stalled past `stale`, or someone removed the lock): check it
 * before any step that cannot be undone.
 */
export async function withBundleLock<T>(
  targetPath: string,
  fn: (signal: AbortSignal) => Promise<T>,
  options: BundleLockOptions = {},
): Promise<T> {
  const { lock } = await loadProperLockfile();
  const lockPath = `${targetPath}.lock`;
  const compromised = new AbortController();
  const lockOptions = {
    realpath: false,
    stale: options.stale ?? DEFAULT_LOCK_STALE,
    // The default throws from a timer, which would kill the master.
    onCompromised: (error: Error) => compromised.abort(error),
  };
  let release: () => Promise<void>;
  try {
    release = await acquire(lock, targetPath, lockOptions, options.retries ?? DEFAULT_LOCK_RETRIES);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') {
      throw new OverseerError(
        'ERR_OVERSEER_LOCKED',
        `another process holds the bundle lock ${lockPath}; wait for it to finish, or remove the directory if no overseer master uses this bundle`,
        { subject: lockPath, cause: error },
      );
    }
    throw new OverseerError(
      'ERR_OVERSEER_SWAP_FAILED',
      `cannot create the bundle lock ${lockPath}: ${(error as Error).message}; the bundle's directory must be writable by the master`,
      { subject: lockPath, cause: error },
    );
  }
  try {
    return await fn(compromised.signal);
  } finally {
    // A compromised lock is already released (ERELEASED); nothing is left to clean up.
    await release().catch(() => {});
  }
}

/**
 * Removes `<target>.lock` when its holder stopped refreshing it more than `stale` ms ago (a
 * master killed mid-swap), by proper-lockfile's own rule, without loading proper-lockfile.
 * Returns whether it removed one. A fresh lock is left to its holder.
 */
export async function removeStaleLock(targetPath: string, stale = DEFAULT_LOCK_STALE): Promise<boolean> {
  const lockPath = `${targetPath}.lock`;
  try {
    const { mtimeMs } = await fs.promises.stat(lockPath);
    if (Date.now() - mtimeMs <= stale) return false;
    await fs.promises.rmdir(lockPath);
    return true;
  } catch {
    return false;
  }
}
