/**
 * The file system of one `overseer deploy` application, written so that whoever can write its
 * command/ or release/ folder cannot make overseer deploy write, delete or publish anything
 * elsewhere: release/, archive/ and command/ must be real folders (never followed when they are
 * links), reports are created exclusively without following links, and leftovers of a killed
 * deploy are removed by their own prefixes only.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { App } from './app.js';
import { OverseerError, describeError } from '../errors.js';

/** Prefixes of overseer deploy's own temporaries in an app folder. */
export const STAGING_PREFIX = '.overseer-staging-';
export const TRASH_PREFIX = '.overseer-old-release-';

const { O_CREAT, O_EXCL, O_NOFOLLOW, O_WRONLY } = fs.constants;
/** New file, never an existing one and never through a link planted under its name. */
export const CREATE_NEW = O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY;

/** Throws ERR_OVERSEER_UNSAFE_FOLDER unless `folder` is a folder itself (not a link to one). */
export async function checkFolder(folder: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.lstat(folder);
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_UNSAFE_FOLDER', `${folder} cannot be read (${describeError(error)}); it must be a folder of the app`, { subject: folder, cause: error });
  }
  if (stat.isSymbolicLink()) {
    const target = await fs.promises.readlink(folder).catch(() => '?');
    throw new OverseerError(
      'ERR_OVERSEER_UNSAFE_FOLDER',
      `${folder} is a symlink to ${target}; replace it with a folder (rm ${folder} && mkdir ${folder}): overseer deploy never follows links for release/, archive/ and command/, so whoever can change one cannot make it write or delete elsewhere`,
      { subject: folder },
    );
  }
  if (!stat.isDirectory()) {
    throw new OverseerError('ERR_OVERSEER_UNSAFE_FOLDER', `${folder} is not a folder; remove it, and overseer deploy makes the folder`, { subject: folder });
  }
}

/** Checks release/, archive/ and command/ (all, or the ones named). */
export async function checkAppFolders(app: App, folders: readonly string[] = [app.release, app.archive, app.command]): Promise<void> {
  for (const folder of folders) await checkFolder(folder);
}

/**
 * Makes the app's missing folders (mkdir never follows a link: an existing one is left for
 * checkAppFolders to refuse), and removes temporaries a killed deploy left in the app folder.
 */
export async function prepareAppFolders(app: App): Promise<void> {
  for (const folder of [app.release, app.archive, app.command]) {
    await fs.promises.mkdir(folder).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  }
  const names = await fs.promises.readdir(app.dir).catch(() => [] as string[]);
  for (const name of names) {
    if (name.startsWith(STAGING_PREFIX) || name.startsWith(TRASH_PREFIX)) await fs.promises.rm(path.join(app.dir, name), { recursive: true, force: true });
  }
}

/**
 * Writes `file` whole or not at all: a temporary beside it, created exclusively and without
 * following links (a link planted under any name cannot redirect the write), then renamed over
 * it (rename replaces a link at `file` itself, never its target).
 */
export async function writeReport(file: string, text: string): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.promises.open(temp, CREATE_NEW, 0o644);
  try {
    await handle.writeFile(text);
  } catch (error) {
    await handle.close();
    await fs.promises.rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  await fs.promises.rename(temp, file);
}

/**
 * Swaps release/ for a fresh empty folder with the same mode, and removes the old one. The old
 * one is renamed away first, so the removal never goes through a path someone may relink.
 */
export async function emptyRelease(app: App): Promise<void> {
  const stat = await fs.promises.lstat(app.release);
  const trash = path.join(app.dir, `${TRASH_PREFIX}${randomBytes(6).toString('hex')}`);
  await fs.promises.rename(app.release, trash);
  await fs.promises.mkdir(app.release);
  await fs.promises.chmod(app.release, stat.mode & 0o7777);
  await fs.promises.rm(trash, { recursive: true, force: true });
}
