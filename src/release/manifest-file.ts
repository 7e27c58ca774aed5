/**
 * The manifest file on the publisher's disk: read and parse it, and write a new version of it
 * whole (a temporary file in the same folder, then rename), so an upload or an instance reading
 * the folder never sees half a manifest. Every write raises `sequence` and sets `expires`, and
 * removes the `.minisig` beside it, which signed the previous bytes.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { OverseerError } from '../errors.js';
import { loadProperLockfile } from '../upgrade/lock.js';
import { MANIFEST_SCHEMA, MAX_MANIFEST_BYTES, parseManifest, serializeManifest, type Manifest } from '../manifest/document.js';

export const SIGNATURE_SUFFIX = '.minisig';

/** Reads and parses the manifest at `path`; `undefined` when there is no file (only `create` may start one). */
export async function readManifestFile(path: string): Promise<{ manifest: Manifest; text: string } | undefined> {
  let text: string;
  try {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      if (size > MAX_MANIFEST_BYTES) {
        throw new OverseerError('ERR_OVERSEER_MANIFEST_INVALID', `the manifest ${path} is ${size} bytes, more than ${MAX_MANIFEST_BYTES}; prune old releases`, { subject: path });
      }
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return { manifest: parseManifest(text, path), text };
}

/** Reads the manifest at `path` and fails with a clear error when it does not exist. */
export async function requireManifestFile(path: string): Promise<{ manifest: Manifest; text: string }> {
  const found = await readManifestFile(path);
  if (found === undefined) {
    throw new OverseerError(
      'ERR_OVERSEER_RELEASE_REFUSED',
      `there is no manifest at ${path}; make one with \`overseer release create --manifest ${path} --version V ARTIFACT\``,
      { subject: path },
    );
  }
  return found;
}

/** A manifest with nothing in it yet, for the first `create`. */
export function emptyManifest(expires: string): Manifest {
  return { schema: MANIFEST_SCHEMA, sequence: 0, expires, channels: Object.create(null) as Manifest['channels'] };
}

export interface WriteResult {
  readonly text: string;
  /** True when a `.minisig` was beside the manifest and is now removed, since it signed the old bytes. */
  readonly removedSignature: boolean;
}

/**
 * Writes `manifest` to `path` with `sequence` raised by one and `expires` set, atomically, after
 * checking the result with the same parser instances use. Removes the stale `.minisig`.
 */
export async function writeManifestFile(path: string, manifest: Manifest, expires: string): Promise<WriteResult & { manifest: Manifest }> {
  const next: Manifest = { ...manifest, sequence: manifest.sequence + 1, expires };
  const text = serializeManifest(next);
  // What instances will parse: a manifest this command cannot read back is never written.
  const checked = parseManifest(text, path);
  await writeFileAtomic(path, text);
  const removedSignature = await removeIfPresent(`${path}${SIGNATURE_SUFFIX}`);
  return { text, removedSignature, manifest: checked };
}

/** Writes `text` to `path` through a temporary file in the same folder and a rename. */
export async function writeFileAtomic(path: string, text: string, mode = 0o644): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

async function removeIfPresent(path: string): Promise<boolean> {
  try {
    await rm(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

// Another publisher's write (read, edit, write, sign) takes well under this.
const LOCK_WAIT_MS = 30_000;
const LOCK_STALE_MS = 10_000;

/**
 * Runs `fn` holding `<manifest>.lock` (proper-lockfile), so two publishers writing the same
 * manifest at once do not lose an edit: the second waits, then reads what the first wrote.
 * A lock left by a killed publisher goes stale after 10 s.
 */
export async function withManifestLock<T>(manifestPath: string, fn: () => Promise<T>): Promise<T> {
  const { lock } = await loadProperLockfile();
  const lockPath = `${manifestPath}.lock`;
  const started = Date.now();
  let release: () => Promise<void>;
  for (let attempt = 0; ; attempt += 1) {
    try {
      release = await lock(manifestPath, { realpath: false, stale: LOCK_STALE_MS, onCompromised: () => {} });
      break;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ELOCKED' && Date.now() - started < LOCK_WAIT_MS) {
        await delay(Math.min(50 * 2 ** attempt, 1000));
        continue;
      }
      throw new OverseerError(
        'ERR_OVERSEER_RELEASE_REFUSED',
        code === 'ELOCKED'
          ? `another overseer release is writing ${manifestPath} (it holds ${lockPath}); run one publisher at a time, or remove ${lockPath} if none runs`
          : `cannot lock ${manifestPath} (${(error as Error).message}); its folder must be writable`,
        { subject: manifestPath, cause: error },
      );
    }
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => {});
  }
}
