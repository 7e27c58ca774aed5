/**
 * The temp files staged beside a bundle: their names, how they are made durable (fsync, mode),
 * and the start-up cleanup of those a killed master left. A temp's name carries the pid of the process writing it, so a master sharing the
 * bundle never deletes another live master's download.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, link, open, readdir, realpath, rename, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';

/**
 * A temp whose owner still runs is kept unless untouched for this long: pids are reused (and
 * repeat across containers), and a download that has not moved for an hour is dead anyway.
 */
export const LIVE_OWNER_BOUND_MS = 60 * 60 * 1000;

function tempNameParts(targetPath: string): { dir: string; stem: string; ext: string } {
  const ext = path.extname(targetPath);
  return { dir: path.dirname(targetPath), stem: path.basename(targetPath, ext), ext };
}

/** `.<stem>.overseer-<pid>-<16 hex>.tmp<ext>` beside the target: Node still loads it as `<ext>`. */
export function createTempPath(targetPath: string): string {
  const { dir, stem, ext } = tempNameParts(targetPath);
  return path.join(dir, `.${stem}.overseer-${process.pid}-${randomBytes(8).toString('hex')}.tmp${ext}`);
}

/** Matches this bundle's temps; group 1 is the owner's pid (absent in names of older versions). */
function tempNamePattern(targetPath: string): RegExp {
  const { stem, ext } = tempNameParts(targetPath);
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^\\.${escape(stem)}\\.overseer-(?:([1-9][0-9]{0,9})-)?[0-9a-f]{16}\\.tmp${escape(ext)}$`);
}

/** True when a process with this pid runs (EPERM: it runs as another user). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface CleanupOptions {
  /** Spare temps modified within this many ms, whoever owns them. */
  readonly olderThan?: number;
  /** A temp of another live process is removed only once untouched this long. @default LIVE_OWNER_BOUND_MS */
  readonly liveOwnerBound?: number;
}

/**
 * Removes the temp files a killed master left beside the bundle's real target: regular files
 * named exactly as this module names them for this bundle, nothing else, and never one whose
 * owning pid still runs (another master sharing the bundle, mid-download) unless it is older
 * than `liveOwnerBound`. Returns their paths. Rejects with the file system error when the
 * bundle cannot be resolved or its directory read.
 */
export async function cleanupStaleTemps(bundlePath: string, options: CleanupOptions = {}): Promise<string[]> {
  const targetPath = await realpath(bundlePath);
  const dir = path.dirname(targetPath);
  const pattern = tempNamePattern(targetPath);
  const now = Date.now();
  const removed: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const match = entry.isFile() ? pattern.exec(entry.name) : null;
    if (match === null) continue;
    const file = path.join(dir, entry.name);
    const owner = match[1] === undefined ? undefined : Number(match[1]);
    // Our own pid in a name at start-up is a previous process that had it: nothing of ours is staged yet.
    const liveOwner = owner !== undefined && owner !== process.pid && isRunning(owner);
    const minAge = liveOwner ? Math.max(options.olderThan ?? 0, options.liveOwnerBound ?? LIVE_OWNER_BOUND_MS) : options.olderThan;
    try {
      if (minAge !== undefined && (await stat(file)).mtimeMs > now - minAge) continue;
      await unlink(file);
      removed.push(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return removed;
}

export async function unlinkIfExists(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/**
 * Makes the renames in `dir` survive a power loss. Best effort: it runs after the rename that
 * already decided the outcome, and some platforms (Windows) cannot fsync a directory.
 */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // See above: nothing to undo and nothing the caller could do.
  } finally {
    await handle?.close().catch(() => {});
  }
}

/**
 * Sets `mode` (open() and copyFile() modes went through the umask) and flushes the file to disk,
 * so the rename that follows can only ever expose complete contents.
 */
export async function syncFile(file: string, mode: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.chmod(mode & 0o7777);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Copies `from` to a fresh temp beside `targetPath` with `from`'s mode, fsynced. */
export async function copyToTemp(from: string, targetPath: string): Promise<string> {
  const tempPath = createTempPath(targetPath);
  try {
    const { mode } = await stat(from);
    await copyFile(from, tempPath, constants.COPYFILE_FICLONE);
    await syncFile(tempPath, mode);
    return tempPath;
  } catch (error) {
    await unlinkIfExists(tempPath).catch(() => {});
    throw error;
  }
}

/** Errors of link() that mean "this file system or this file cannot be hard-linked": copy instead. */
const NO_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS', 'EACCES']);

/**
 * A hard link to `from` at a fresh temp beside `targetPath`: O(1) whatever the size, same inode
 * (so same bytes and mode, already durable). Made only for a file about to be renamed away from
 * its name, so the link ends up its only name. Where the file system refuses links, a copy
 * (copyToTemp). Returns the temp and how it was made.
 */
export async function linkOrCopyToTemp(from: string, targetPath: string): Promise<{ tempPath: string; linked: boolean }> {
  const tempPath = createTempPath(targetPath);
  try {
    await link(from, tempPath);
    return { tempPath, linked: true };
  } catch (error) {
    if (!NO_LINK.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
  }
  return { tempPath: await copyToTemp(from, targetPath), linked: false };
}

/**
 * Writes a small state file beside the bundle (version floor, rolled-back releases, manifest
 * sequence): a fresh `<file>.<pid>.tmp` (exclusive, no links followed), fsynced, renamed over the
 * file, so a crash leaves the old text or the new, never half of one.
 */
export async function writeFileAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await unlink(temp).catch(() => {});
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}
