/**
 * Releases rolled back here, persisted beside the bundle (`<bundle>.overseer-rolled-back`, one
 * JSON line each), so a master restart does not try them again: a release that failed its
 * probation would fail it again, and every try costs a handoff and a rollback under traffic.
 * The file is read as untrusted input: size-capped, each line checked, the rest ignored.
 */
import { constants } from 'node:fs';
import { open, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { isRunning, writeFileAtomically } from './temps.js';

/** What a rolled-back release is known by: its source id, its hashes, and the signature it came with. */
export interface RolledBackEntry {
  readonly id?: string | undefined;
  /** sha256 of the content and of the bytes as published (lower-case hex). */
  readonly sha256: readonly string[];
  /** sha256 of the signature offered, or '-' (see rejections.ts). */
  readonly signature: string;
  readonly at: number;
  readonly cause: string;
}

/** More than this is not a list this master wrote: the newest entries are kept, the file rewritten. */
const MAX_ENTRIES = 1_000;
const MAX_BYTES = 1024 * 1024;
const HEX64 = /^[0-9a-f]{64}$/;

export function rolledBackFile(bundlePath: string): string {
  return `${path.resolve(bundlePath)}.overseer-rolled-back`;
}

function parseEntry(line: string): RolledBackEntry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { id, sha256, signature, at, cause } = value as Record<string, unknown>;
  if (id !== undefined && (typeof id !== 'string' || id.length > 1024)) return undefined;
  if (!Array.isArray(sha256) || sha256.length > 4 || !sha256.every((item) => typeof item === 'string' && HEX64.test(item))) return undefined;
  if (typeof signature !== 'string' || (signature !== '-' && !HEX64.test(signature))) return undefined;
  return { id, sha256: sha256 as string[], signature, at: typeof at === 'number' ? at : 0, cause: typeof cause === 'string' ? cause.slice(0, 64) : '' };
}

/** Removes the temps of writes whose process is gone (a kill -9 mid-write), as the version floor does. */
async function removeDeadTemps(file: string): Promise<void> {
  const prefix = `${path.basename(file)}.`;
  for (const name of await readdir(path.dirname(file)).catch(() => [] as string[])) {
    const pid = name.startsWith(prefix) && name.endsWith('.tmp') ? Number(name.slice(prefix.length, -'.tmp'.length)) : Number.NaN;
    if (!Number.isInteger(pid) || pid <= 0 || (pid !== process.pid && isRunning(pid))) continue;
    await unlink(path.join(path.dirname(file), name)).catch(() => {});
  }
}

/** The entries on disk; a missing file is none, a damaged one is warned about and read as far as it is sound. */
export async function readRolledBack(bundlePath: string, warn: (message: string) => void): Promise<RolledBackEntry[]> {
  const file = rolledBackFile(bundlePath);
  await removeDeadTemps(file);
  let text: string;
  try {
    const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const { size } = await handle.stat();
      text = size > MAX_BYTES ? '' : await handle.readFile('utf8');
      if (size > MAX_BYTES) warn(`${file} is ${size} bytes, more than a list of rolled-back releases holds; ignored`);
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') warn(`cannot read ${file}: ${(error as Error).message}; releases rolled back before may be tried again`);
    return [];
  }
  const entries: RolledBackEntry[] = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const entry = parseEntry(line);
    if (entry) entries.push(entry);
    else bad += 1;
  }
  if (bad > 0) warn(`${file}: ${bad} line(s) are not rolled-back releases; ignored`);
  return entries.slice(-MAX_ENTRIES);
}

/** Adds an entry: the whole list is rewritten atomically (fresh temp, fsync, rename), as the version floor is. */
export async function addRolledBack(bundlePath: string, entry: RolledBackEntry, warn: (message: string) => void): Promise<void> {
  const file = rolledBackFile(bundlePath);
  const entries = [...(await readRolledBack(bundlePath, warn)), entry].slice(-MAX_ENTRIES);
  await writeFileAtomically(file, entries.map((item) => JSON.stringify(item)).join('\n') + '\n');
}
