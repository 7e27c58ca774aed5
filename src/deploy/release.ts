/**
 * The folders of one `overseer deploy` application: whether release/ is completely staged
 * (the .ready marker, or a quiet period), its verification (SHA256SUMS, optionally signed with
 * minisign), and the archive/ entries: their names, which one a rollback takes, and pruning.
 */
import fs from 'node:fs';
import path from 'node:path';
import { sha256File } from '../upgrade/hash.js';
import { OverseerError, describeError } from '../errors.js';
import { parsePublicKey, parseSignature, verifyFileSignature } from '../upgrade/minisign.js';

/** Written last by the deployer: release/ is complete. */
export const READY_MARKER = '.ready';
export const SUMS_FILE = 'SHA256SUMS';
export const SIGNATURE_FILE = 'SHA256SUMS.minisig';
/** Suffixes of archives a rollback never takes: releases that failed, and ones a rollback replaced. */
export const FAILED_SUFFIX = '-failed';
export const ROLLED_BACK_SUFFIX = '-rolled-back';

const NOT_RELEASE_FILES = new Set([READY_MARKER, SUMS_FILE, SIGNATURE_FILE]);

interface Entry {
  /** Relative to the release folder, with forward slashes. */
  readonly name: string;
  readonly file: string;
  readonly stat: fs.Stats;
}

/** Every entry below `root` (not following symlinks), folders before their contents. */
async function walk(root: string, prefix = ''): Promise<Entry[]> {
  const entries: Entry[] = [];
  const names = (await fs.promises.readdir(path.join(root, prefix))).sort();
  for (const base of names) {
    const name = prefix === '' ? base : `${prefix}/${base}`;
    const file = path.join(root, name);
    const stat = await fs.promises.lstat(file);
    entries.push({ name, file, stat });
    if (stat.isDirectory()) entries.push(...(await walk(root, name)));
  }
  return entries;
}

export type Completeness =
  | { readonly complete: true; readonly by: 'marker' | 'quiet-period' }
  | { readonly complete: false; readonly why: string };

/**
 * Whether release/ may be taken: it holds the .ready marker, or (with a quiet period) nothing
 * in it changed for that long. ctime counts as a change too: a copy that preserves mtimes (cp -p,
 * rsync -a) cannot fake it. Throws ERR_OVERSEER_RELEASE_INVALID when release/ is empty.
 */
export async function releaseCompleteness(releaseDir: string, quietPeriod: number | undefined, now = Date.now()): Promise<Completeness> {
  let entries: Entry[];
  try {
    entries = await walk(releaseDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') entries = [];
    else throw error;
  }
  if (entries.every((entry) => entry.name === READY_MARKER)) {
    throw new OverseerError(
      'ERR_OVERSEER_RELEASE_INVALID',
      `release/ is empty; copy the new release into it, write release/${READY_MARKER} last, then drop command/release again`,
      { subject: releaseDir },
    );
  }
  if (entries.some((entry) => entry.name === READY_MARKER)) return { complete: true, by: 'marker' };
  if (quietPeriod === undefined) {
    return { complete: false, why: `release/ has no ${READY_MARKER} marker yet; the deployer writes it once every file is in place` };
  }
  const folder = await fs.promises.lstat(releaseDir);
  const changed = Math.max(folder.mtimeMs, folder.ctimeMs, ...entries.map((entry) => Math.max(entry.stat.mtimeMs, entry.stat.ctimeMs)));
  const quietFor = now - changed;
  if (quietFor >= quietPeriod) return { complete: true, by: 'quiet-period' };
  return { complete: false, why: `release/ changed ${Math.max(0, Math.round(quietFor))} ms ago; it is taken once nothing in it changed for ${quietPeriod} ms` };
}

export interface ReleaseVerification {
  /** Files whose sha256 was checked against SHA256SUMS (0 without one). */
  readonly checked: number;
  /** Key id of the minisign key that signed SHA256SUMS, when one did. */
  readonly keyId: string | undefined;
}

/**
 * Verifies a release folder (the private copy of release/; messages name release/): with
 * `publicKey`, SHA256SUMS.minisig must be a valid signature of SHA256SUMS; with SHA256SUMS
 * (signed or not), it must list exactly the files in the folder (the marker and the sums
 * themselves aside) and each must match. Every symlink must resolve, for real, inside the folder.
 * `label` names the app in messages; `origin` is the release/ folder the copy was taken from.
 */
export async function verifyRelease(releaseDir: string, options: { readonly publicKey?: string | undefined; readonly label: string; readonly origin?: string }): Promise<ReleaseVerification> {
  const { label } = options;
  const origin = options.origin ?? releaseDir;
  // Links first: nothing below is read through a link that leaves the folder.
  const entries = await walk(releaseDir);
  await checkLinks(releaseDir, entries, origin);
  const sumsPath = path.join(releaseDir, SUMS_FILE);
  const hasSums = fs.existsSync(sumsPath);
  let keyId: string | undefined;
  if (options.publicKey !== undefined) {
    const key = parsePublicKey(options.publicKey, `${label}/app.json: "publicKey"`);
    if (!hasSums) {
      throw new OverseerError(
        'ERR_OVERSEER_SIGNATURE_MISSING',
        `${label}/app.json has a publicKey but release/ has no ${SUMS_FILE}; write one (sha256sum FILES > ${SUMS_FILE}) and sign it (minisign -Sm ${SUMS_FILE})`,
        { subject: path.join(origin, SUMS_FILE) },
      );
    }
    const signaturePath = path.join(releaseDir, SIGNATURE_FILE);
    let signatureText: string;
    try {
      signatureText = await fs.promises.readFile(signaturePath, 'utf8');
    } catch (error) {
      throw new OverseerError(
        'ERR_OVERSEER_SIGNATURE_MISSING',
        `${label}/app.json has a publicKey but release/${SIGNATURE_FILE} cannot be read (${describeError(error)}); sign the sums with minisign -Sm ${SUMS_FILE}`,
        { subject: path.join(origin, SIGNATURE_FILE), cause: error },
      );
    }
    const signature = parseSignature(signatureText, `release/${SIGNATURE_FILE}`);
    keyId = (await verifyFileSignature(key, signature, sumsPath)).keyId;
  }
  if (!hasSums) return { checked: 0, keyId };

  const listed = parseSums(await fs.promises.readFile(sumsPath, 'utf8'));
  const present = new Map<string, Entry>();
  for (const entry of entries) {
    if (entry.stat.isDirectory() || NOT_RELEASE_FILES.has(entry.name)) continue;
    if (entry.stat.isSymbolicLink()) {
      // A link into the release is covered by its target's line; one listed itself is checked below.
      if (!listed.has(entry.name)) continue;
    } else if (!entry.stat.isFile()) {
      throw invalid(`release/${entry.name} is neither a file, a folder nor a symlink`, path.join(origin, entry.name));
    }
    present.set(entry.name, entry);
  }
  const unlisted = [...present.keys()].filter((name) => !listed.has(name));
  if (unlisted.length > 0) {
    throw invalid(`${SUMS_FILE} does not list ${unlisted.slice(0, 5).map((name) => `release/${name}`).join(', ')}${unlisted.length > 5 ? ` and ${unlisted.length - 5} more` : ''}; list every file of the release (or remove the extra files)`, path.join(origin, SUMS_FILE));
  }
  for (const [name, expected] of listed) {
    const entry = present.get(name);
    if (entry === undefined) throw invalid(`${SUMS_FILE} lists ${name}, which release/ does not have; copy it, or regenerate ${SUMS_FILE}`, path.join(origin, SUMS_FILE));
    const actual = await sha256File(entry.file);
    if (actual !== expected) {
      throw new OverseerError(
        'ERR_OVERSEER_CHECKSUM_MISMATCH',
        `release/${name} does not match ${SUMS_FILE}: its sha256 is ${actual}, the sums say ${expected}; a changed or half-copied file (copy it again, or regenerate ${SUMS_FILE})`,
        { subject: path.join(origin, name) },
      );
    }
  }
  return { checked: listed.size, keyId };
}

/**
 * Every symlink must resolve inside the folder, following each link for real: a chain such as
 * d/l -> .., d/up -> l/.. looks inside as text and leaves it. A dangling link is refused too
 * (what it would point at cannot be checked).
 */
async function checkLinks(releaseDir: string, entries: readonly Entry[], origin: string): Promise<void> {
  const root = await fs.promises.realpath(releaseDir);
  for (const entry of entries) {
    if (!entry.stat.isSymbolicLink()) continue;
    const text = await fs.promises.readlink(entry.file);
    let target: string;
    try {
      target = await fs.promises.realpath(entry.file);
    } catch (error) {
      throw invalid(`release/${entry.name} is a symlink to ${text}, which does not resolve (${describeError(error)}); a release's links must point at its own files`, path.join(origin, entry.name));
    }
    if (target !== root && !target.startsWith(`${root}${path.sep}`)) {
      throw invalid(`release/${entry.name} is a symlink that resolves to ${target} (through ${text}), outside release/; a release must be self-contained`, path.join(origin, entry.name));
    }
  }
}

/** Reads `sha256sum` output ("HEX  name" or "HEX *name"); names are relative, without "..". */
export function parseSums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '' || line.startsWith('#')) return;
    const match = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    const where = `${SUMS_FILE} line ${index + 1}`;
    if (match === null) throw invalid(`${where} is not "SHA256  path" (as sha256sum writes it): ${JSON.stringify(line.slice(0, 100))}`);
    const name = path.posix.normalize((match[2] ?? '').replace(/^\.\//, ''));
    if (name.startsWith('/') || name === '..' || name.startsWith('../')) throw invalid(`${where} names ${JSON.stringify(match[2])}, outside release/; list paths relative to release/`);
    if (sums.has(name)) throw invalid(`${where} lists ${name} a second time`);
    sums.set(name, (match[1] ?? '').toLowerCase());
  });
  return sums;
}

function invalid(message: string, subject?: string): OverseerError {
  return new OverseerError('ERR_OVERSEER_RELEASE_INVALID', message, subject === undefined ? {} : { subject });
}

/** A new, unused path in archive/: the UTC time (sortable, no colons) and a suffix. */
export function newArchivePath(archiveDir: string, suffix = '', now = Date.now()): string {
  for (let at = now; ; at += 1) {
    const candidate = path.join(archiveDir, `${new Date(at).toISOString().replace(/:/g, '-')}${suffix}`);
    // lstat: a dangling link under that name is taken, too.
    if (!lstatSafe(candidate)) return candidate;
  }
}

function lstatSafe(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch {
    return undefined;
  }
}

/** Names of the folders in archive/, oldest first. */
export async function listArchives(archiveDir: string): Promise<string[]> {
  const entries = await fs.promises.readdir(archiveDir, { withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isDirectory() && !entry.name.startsWith('.')).map((entry) => entry.name).sort();
}

/** The archive a rollback takes: the newest that neither failed nor was rolled back. */
export async function newestGoodArchive(archiveDir: string): Promise<string | undefined> {
  const names = await listArchives(archiveDir);
  return names.reverse().find((name) => !name.endsWith(FAILED_SUFFIX) && !name.endsWith(ROLLED_BACK_SUFFIX));
}

/** Removes all but the newest `keep` archives; returns the names removed. */
export async function pruneArchives(archiveDir: string, keep: number): Promise<string[]> {
  const names = await listArchives(archiveDir);
  const removed = names.slice(0, Math.max(0, names.length - keep));
  // A draining child may still run from a removed folder: its open files and cwd stay valid.
  for (const name of removed) await fs.promises.rm(path.join(archiveDir, name), { recursive: true, force: true });
  return removed;
}
