/**
 * Release folders: a bundle that is a directory, reached through a symlink (`current ->
 * releases/<id>`). A release arrives as a tar archive, is extracted beside the running one,
 * identified by a manifest hash, and swapped in by replacing the symlink, which is atomic;
 * the previous target stays reachable as `<link>.previous` for rollback.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { OverseerError } from '../errors.js';
import { manifestSha256 } from './hash.js';
import { withBundleLock } from './lock.js';
import { extractTar } from './tar.js';




export interface InstalledFolder {
  /** The extracted release, beside the running one, named by its manifest hash. */
  readonly dir: string;
  readonly sha256: string;
}

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

/** Extracts a staged archive beside the folder the link points to. */
export async function installFolder(linkPath: string, archive: string): Promise<InstalledFolder> {
  await requireLink(linkPath);
  const releases = path.dirname(await fs.realpath(linkPath));
  const temp = path.join(releases, `.overseer-${randomBytes(8).toString('hex')}.tmp.d`);
  await fs.mkdir(temp);
  try {
    await extractTar(archive, temp);
    const sha256 = await manifestSha256(temp);
    const dir = path.join(releases, sha256.slice(0, 16));
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(temp, dir);
    return { dir, sha256 };
  } catch (error) {
    await fs.rm(temp, { recursive: true, force: true });
    throw error;
  }
}

/** Points `link` at `target` atomically: a new symlink renamed over the old one. */
async function repoint(link: string, target: string): Promise<void> {
  const temp = `${link}.overseer-${randomBytes(8).toString('hex')}.tmp`;
  await fs.symlink(target, temp);
  try {
    await fs.rename(temp, link);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}

/** Swaps the link to the new folder under the bundle lock; the old target becomes `.previous`. */
export async function swapFolder(linkPath: string, dir: string): Promise<void> {
  await withBundleLock(linkPath, async () => {
    const old = await requireLink(linkPath);
    await repoint(`${linkPath}.previous`, old);
    await repoint(linkPath, path.relative(path.dirname(linkPath), dir));
  });
}

/** Rollback: the link points where `.previous` does again. */
export async function restorePreviousFolder(linkPath: string): Promise<void> {
  await withBundleLock(linkPath, async () => {
    const previous = await fs.readlink(`${linkPath}.previous`).catch((error: unknown) => {
      throw new OverseerError('ERR_OVERSEER_SWAP_FAILED', `there is no ${linkPath}.previous to roll back to`, { subject: linkPath, cause: error });
    });
    await repoint(linkPath, previous);
  });
}

/** Removes a folder that was extracted but will not go live. */
export async function discardFolder(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
}
