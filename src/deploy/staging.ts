/**
 * Takes a copy of release/ into a private staging folder (mode 0700, inside the app folder so
 * it can be renamed to current/), where it is verified and from where it goes live. Whoever can
 * write release/ (even through a file they hold open) cannot change what was verified: the
 * copies are new files only overseer deploy can reach.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CREATE_NEW, STAGING_PREFIX } from './folders.js';
import { READY_MARKER } from './release.js';
import { OverseerError } from '../errors.js';

const { O_NOFOLLOW, O_RDONLY } = fs.constants;
/** Group and other may read and run what goes live, never write it. */
const LIVE_MODE = 0o755;
const CHUNK = 256 * 1024;

/** Copies `releaseDir` (all but the .ready marker) into a new private folder in `appDir`; returns its path. */
export async function stageCopy(releaseDir: string, appDir: string): Promise<string> {
  const staging = await fs.promises.mkdtemp(path.join(appDir, STAGING_PREFIX));
  try {
    await copyTree(releaseDir, staging, '');
  } catch (error) {
    await fs.promises.rm(staging, { recursive: true, force: true });
    throw error;
  }
  return staging;
}

/** Opens the staged folder to others as release/ was (less any write bit), once it is verified. */
export async function openStaged(staging: string, releaseDir: string): Promise<void> {
  const { mode } = await fs.promises.lstat(releaseDir);
  await fs.promises.chmod(staging, mode & LIVE_MODE);
}

async function copyTree(from: string, to: string, relative: string): Promise<void> {
  const folder = path.join(from, relative);
  const before = await fs.promises.lstat(folder);
  for (const base of (await fs.promises.readdir(folder)).sort()) {
    const name = relative === '' ? base : `${relative}/${base}`;
    if (name === READY_MARKER) continue;
    const source = path.join(from, name);
    const target = path.join(to, name);
    const stat = await fs.promises.lstat(source);
    if (stat.isSymbolicLink()) {
      // Copied as it is; verifyRelease resolves it in the staged copy.
      await fs.promises.symlink(await fs.promises.readlink(source), target);
    } else if (stat.isDirectory()) {
      await fs.promises.mkdir(target, { mode: 0o700 });
      await copyTree(from, to, name);
      await fs.promises.chmod(target, stat.mode & LIVE_MODE);
    } else if (stat.isFile()) {
      await copyFile(source, target, stat);
    } else {
      throw new OverseerError('ERR_OVERSEER_RELEASE_INVALID', `release/${name} is neither a file, a folder nor a symlink; a release holds only those`, { subject: source });
    }
  }
  // A folder swapped for a link while it was read would have been copied from elsewhere.
  const after = await fs.promises.lstat(folder);
  if (!after.isDirectory() || after.ino !== before.ino || after.dev !== before.dev) {
    throw new OverseerError('ERR_OVERSEER_RELEASE_INVALID', `release/${relative} changed while it was copied; stage the release again`, { subject: folder });
  }
}

async function copyFile(source: string, target: string, stat: fs.Stats): Promise<void> {
  const input = await fs.promises.open(source, O_RDONLY | O_NOFOLLOW);
  try {
    const opened = await input.stat();
    if (!opened.isFile() || opened.ino !== stat.ino || opened.dev !== stat.dev) {
      throw new OverseerError('ERR_OVERSEER_RELEASE_INVALID', `${source} changed while it was copied; stage the release again`, { subject: source });
    }
    const output = await fs.promises.open(target, CREATE_NEW, stat.mode & LIVE_MODE);
    try {
      // A plain loop: streams over a FileHandle keep it referenced, and close() would wait on them.
      const buffer = Buffer.allocUnsafe(CHUNK);
      for (;;) {
        const { bytesRead } = await input.read(buffer, 0, CHUNK, null);
        if (bytesRead === 0) break;
        for (let written = 0; written < bytesRead;) written += (await output.write(buffer, written, bytesRead - written)).bytesWritten;
      }
      // On disk before current/ may point at it.
      await output.sync();
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}
