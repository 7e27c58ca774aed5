/**
 * Identities of bundles: a file's sha256, or for a release folder a manifest hash over its
 * sorted entries. Light on purpose: the master loads it at start, with or without a fetcher.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

/** sha256 (hex) of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** True when the bundle path leads to a directory. */
export async function isFolderBundle(bundlePath: string): Promise<boolean> {
  try {
    return (await fs.stat(bundlePath)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * sha256 over a folder's sorted entries: path, kind, exec bit, and content hash (or link
 * target). Two folders with the same files hash the same, whatever their mtimes.
 */
export async function manifestSha256(dir: string): Promise<string> {
  const manifest = createHash('sha256');
  const walk = async (relative: string): Promise<void> => {
    const entries = (await fs.readdir(path.join(dir, relative), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const entry of entries) {
      const item = path.posix.join(relative, entry.name);
      const full = path.join(dir, item);
      if (entry.isDirectory()) {
        manifest.update(`d ${item}\n`);
        await walk(item);
      } else if (entry.isSymbolicLink()) {
        manifest.update(`l ${item} ${await fs.readlink(full)}\n`);
      } else if (entry.isFile()) {
        const executable = ((await fs.stat(full)).mode & 0o111) !== 0;
        manifest.update(`f ${item} ${executable ? 'x' : '-'} ${await sha256File(full)}\n`);
      }
    }
  };
  await walk('');
  return manifest.digest('hex');
}

/** The id of a bundle: a file's sha256, or a folder's manifest hash. */
export async function bundleSha256(bundlePath: string): Promise<string> {
  return (await isFolderBundle(bundlePath)) ? manifestSha256(bundlePath) : sha256File(bundlePath);
}
