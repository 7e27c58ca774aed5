/**
 * Release folders: a bundle that is a directory, reached through a symlink (`current ->
 * releases/<id>`). A release arrives as a tar archive, is extracted into a fresh temp folder
 * beside the running one, identified by a manifest hash, renamed to `releases/<hash16>` only if
 * that folder does not exist yet, and swapped in by replacing the symlink, which is atomic; the
 * previous target stays reachable as `<link>.previous` for rollback. An existing release folder
 * is never replaced, and neither the live one nor `.previous` is ever removed.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OverseerError } from '../errors.js';
import { manifestSha256 } from './hash.js';
import { withBundleLock } from './lock.js';
import { extractTar } from './tar.js';
import { isRunning } from './temps.js';

/** Release folders kept after a swap besides the live one and `.previous`. */
export const DEFAULT_KEEP_RELEASES = 3;
/** Debris of a master that is still alive is removed once it is this old (a crashed extraction). */
export const DEFAULT_DEBRIS_AGE_MS = 60 * 60 * 1000;
/** A pruned-looking folder this young may be another master's fresh extraction: it stays. */
const PRUNE_GRACE_MS = 10 * 60 * 1000;
/** Names this module gives to release folders (the manifest hash, 16 hex digits). */
const RELEASE_NAME = /^[0-9a-f]{16}$/;
/** `.overseer-<pid>-<host>-<random>.tmp.d`, or the older `.overseer-<random>.tmp.d`. */
const TEMP_DIR = /^\.overseer-(?:(\d+)-([0-9a-f]{8})-)?[0-9a-f]{16}\.tmp\.d$/;
/**
 * Names carry the host too: a pid says nothing about a process of another host or container
 * sharing the folder, whose debris is then judged by its age alone.
 */
const HOST = createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8);

export interface InstalledFolder {
  /** The extracted release, beside the running one, named by its manifest hash. */
  readonly dir: string;
  readonly sha256: string;
  /** False when `dir` already existed (a replay, or the live release): nothing was changed. */
  readonly created: boolean;
}

export interface SwapFolderOptions {
  /** Release folders to keep besides the live one and `.previous`. @default DEFAULT_KEEP_RELEASES */
  readonly keep?: number;
}

/** Which link each folder installFolder made belongs to, so discardFolder can check it. */
const installedFor = new Map<string, string>();

const tempTag = () => `${process.pid}-${HOST}-${randomBytes(8).toString('hex')}`;

async function requireLink(linkPath: string): Promise<string> {
  try {
    return await fs.readlink(linkPath);
  } catch (error) {
    throw new OverseerError(
      'ERR_OVERSEER_SWAP_FAILED',
      `a release folder can only replace a bundle that is a symlink to a directory (such as current -> releases/1.0.0), and ${linkPath} is not one; make it a symlink`,
      { subject: linkPath, cause: error },
    );
  }
}

/** Makes renames and new entries in `dir` survive a power loss (best effort, see bundle.ts). */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r').catch(() => undefined);
  await handle?.sync().catch(() => {});
  await handle?.close().catch(() => {});
}

/** Real paths of what the link and `.previous` point at: folders never to remove. */
async function liveFolders(linkPath: string): Promise<Set<string>> {
  const live = new Set<string>();
  for (const link of [linkPath, `${linkPath}.previous`]) {
    const real = await fs.realpath(link).catch(() => undefined);
    if (real !== undefined) live.add(real);
  }
  return live;
}

/**
 * Extracts a staged archive into a fresh temp folder beside the one the link points to, then
 * names it by its manifest hash. Never removes or replaces an existing release folder: when
 * `releases/<hash16>` exists, the temp is removed and `created` is false.
 */
export async function installFolder(linkPath: string, archive: string): Promise<InstalledFolder> {
  await requireLink(linkPath);
  const releases = path.dirname(await fs.realpath(linkPath));
  const temp = path.join(releases, `.overseer-${tempTag()}.tmp.d`);
  await fs.mkdir(temp, { mode: 0o755 });
  try {
    await extractTar(archive, temp);
    const sha256 = await manifestSha256(temp);
    const dir = path.join(releases, sha256.slice(0, 16));
    const existing = await fs.lstat(dir).catch(() => undefined);
    if (existing && !existing.isDirectory()) {
      throw new OverseerError('ERR_OVERSEER_SWAP_FAILED', `${dir} exists and is not a directory; remove it so the release can be installed there`, { subject: dir });
    }
    let created = false;
    if (!existing) {
      // rename() would replace an empty directory another master made meanwhile: fine, the
      // same name means the same content. A non-empty one makes it fail, as existing.
      created = await fs.rename(temp, dir).then(() => true, (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOTEMPTY' || error.code === 'EEXIST') return false;
        throw error;
      });
    }
    if (!created) await fs.rm(temp, { recursive: true, force: true });
    await syncDirectory(releases);
    if (created) installedFor.set(dir, linkPath);
    return { dir, sha256, created };
  } catch (error) {
    await fs.rm(temp, { recursive: true, force: true });
    throw error;
  }
}

/** Points `link` at `target` atomically: a new symlink renamed over the old one. */
async function repoint(link: string, target: string): Promise<void> {
  const temp = `${link}.overseer-${tempTag()}.tmp`;
  await fs.symlink(target, temp);
  try {
    await fs.rename(temp, link);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}

/**
 * Swaps the link to the new folder under the bundle lock; the old target becomes `.previous`.
 * Then prunes release folders this module made, keeping the live one, `.previous` and `keep`
 * more (newest first). Returns the pruned folders.
 */
export async function swapFolder(linkPath: string, dir: string, options: SwapFolderOptions = {}): Promise<string[]> {
  const keep = options.keep ?? DEFAULT_KEEP_RELEASES;
  if (!Number.isSafeInteger(keep) || keep < 0) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `keep must be a whole number of release folders, 0 or more, and is ${String(keep)}`, { subject: 'keep' });
  }
  return withBundleLock(linkPath, async () => {
    const old = await requireLink(linkPath);
    await repoint(`${linkPath}.previous`, old);
    await repoint(linkPath, path.relative(path.dirname(linkPath), dir));
    await syncDirectory(path.dirname(linkPath));
    // The swap is done; a folder that cannot be pruned now is pruned after the next one.
    return pruneFolders(linkPath, keep).catch(() => []);
  });
}

/**
 * Removes release folders named as this module names them (16 hex digits) beside the live one,
 * except the live one, `.previous`, the `keep` newest others and any younger than a few
 * minutes (another master sharing the folder may be about to swap it in). Returns their paths.
 */
export async function pruneFolders(linkPath: string, keep = DEFAULT_KEEP_RELEASES): Promise<string[]> {
  const live = await liveFolders(linkPath);
  const releases = path.dirname(await fs.realpath(linkPath));
  const candidates: Array<{ dir: string; mtimeMs: number }> = [];
  for (const entry of await fs.readdir(releases, { withFileTypes: true })) {
    const dir = path.join(releases, entry.name);
    if (!entry.isDirectory() || !RELEASE_NAME.test(entry.name) || live.has(dir)) continue;
    const stat = await fs.lstat(dir).catch(() => undefined);
    if (stat) candidates.push({ dir, mtimeMs: stat.mtimeMs });
  }
  candidates.sort((a, b) => b.mtimeMs - a.mtimeMs);
  const removed: string[] = [];
  for (const { dir, mtimeMs } of candidates.slice(keep)) {
    if (Date.now() - mtimeMs < PRUNE_GRACE_MS) continue;
    await fs.rm(dir, { recursive: true, force: true });
    installedFor.delete(dir);
    removed.push(dir);
  }
  return removed;
}

/** Rollback: the link points where `.previous` does again. */
export async function restorePreviousFolder(linkPath: string): Promise<void> {
  await withBundleLock(linkPath, async () => {
    const previous = await fs.readlink(`${linkPath}.previous`).catch((error: unknown) => {
      throw new OverseerError('ERR_OVERSEER_SWAP_FAILED', `there is no ${linkPath}.previous to roll back to`, { subject: linkPath, cause: error });
    });
    await repoint(linkPath, previous);
    await syncDirectory(path.dirname(linkPath));
  });
}

/**
 * Removes a folder that was extracted but will not go live. Refuses (returns false) when the
 * link or `.previous` points at it, or when no link is known for it (`linkPath` defaults to
 * the one installFolder extracted it for).
 */
export async function discardFolder(dir: string, linkPath = installedFor.get(dir)): Promise<boolean> {
  if (linkPath === undefined) return false;
  const real = await fs.realpath(dir).catch(() => undefined);
  if (real === undefined) return false;
  if ((await liveFolders(linkPath)).has(real)) return false;
  await fs.rm(dir, { recursive: true, force: true });
  installedFor.delete(dir);
  return true;
}


/**
 * Removes what a killed master left: `.overseer-*.tmp.d` folders beside the release folders and
 * `<link>.overseer-*.tmp` / `<link>.previous.overseer-*.tmp` links beside the link — only those
 * whose owner pid (on this host) is gone, or older than `olderThanMs` (another master may share
 * the folder).
 * Returns their paths.
 */
export async function cleanupFolderDebris(linkPath: string, olderThanMs = DEFAULT_DEBRIS_AGE_MS): Promise<string[]> {
  const removed: string[] = [];
  const stale = async (full: string, pid: string | undefined, host: string | undefined): Promise<boolean> => {
    if (pid !== undefined && host === HOST && !isRunning(Number(pid))) return true;
    const stat = await fs.lstat(full).catch(() => undefined);
    return stat !== undefined && Date.now() - stat.mtimeMs > olderThanMs;
  };
  const releases = await fs.realpath(linkPath).then((real) => path.dirname(real), () => undefined);
  for (const entry of releases === undefined ? [] : await fs.readdir(releases, { withFileTypes: true })) {
    const match = TEMP_DIR.exec(entry.name);
    const full = path.join(releases as string, entry.name);
    if (!match || !entry.isDirectory() || !(await stale(full, match[1], match[2]))) continue;
    await fs.rm(full, { recursive: true, force: true });
    removed.push(full);
  }
  const base = path.basename(linkPath);
  const escaped = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const tempLink = new RegExp(`^${escaped}(?:\\.previous)?\\.overseer-(?:(\\d+)-([0-9a-f]{8})-)?[0-9a-f]{16}\\.tmp$`);
  for (const entry of await fs.readdir(path.dirname(linkPath), { withFileTypes: true })) {
    const match = tempLink.exec(entry.name);
    const full = path.join(path.dirname(linkPath), entry.name);
    if (!match || !entry.isSymbolicLink() || !(await stale(full, match[1], match[2]))) continue;
    await fs.rm(full, { force: true });
    removed.push(full);
  }
  return removed;
}
