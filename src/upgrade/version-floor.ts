/**
 * Downgrade and replay protection: the highest version ever installed, kept in a small state
 * file beside the bundle (`<bundle>.overseer-version`) so a restart does not reopen the window,
 * and the rule that decides which version of a release can be believed.
 */
import { readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import semverGt from 'semver/functions/gt.js';
import semverLt from 'semver/functions/lt.js';
import semverValid from 'semver/functions/valid.js';
import { OverseerError } from '../errors.js';
import { isRunning, writeFileAtomically } from './temps.js';

/** What is known of a release's version, and how far each claim can be trusted. */
export interface VersionClaims {
  /** From the trusted comment of a signature that verified. */
  readonly signed: string | undefined;
  /** From the echo-token handshake of the staged release (its bytes verified first). */
  readonly handshake: string | null;
  /** What the source says (a tag, metadata): not covered by any signature. */
  readonly declared: string | undefined;
}

export function versionFile(bundlePath: string): string {
  return `${path.resolve(bundlePath)}.overseer-version`;
}

/** Removes the temps of floor writes whose process is gone (a kill -9 mid-write). */
async function removeDeadTemps(file: string): Promise<void> {
  const prefix = `${path.basename(file)}.`;
  for (const name of await readdir(path.dirname(file)).catch(() => [] as string[])) {
    const pid = name.startsWith(prefix) && name.endsWith('.tmp') ? Number(name.slice(prefix.length, -'.tmp'.length)) : NaN;
    if (!Number.isInteger(pid) || pid <= 0 || (pid !== process.pid && isRunning(pid))) continue;
    await unlink(path.join(path.dirname(file), name)).catch(() => {});
  }
}


/** Reads the persisted floor; a missing or unreadable file is no floor (with a warning for the latter). */
export async function readVersionFloor(bundlePath: string, warn: (message: string) => void): Promise<string | undefined> {
  const file = versionFile(bundlePath);
  await removeDeadTemps(file);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') warn(`cannot read ${file}: ${(error as Error).message}; the version floor starts from config.version`);
    return undefined;
  }
  const version = semverValid(text.trim());
  if (version === null) warn(`${file} holds ${JSON.stringify(text.trim().slice(0, 80))}, not a semver version; ignored`);
  return version ?? undefined;
}

/** Writes the floor atomically: a fresh temp (exclusive, no links followed), fsynced, renamed. */
export async function writeVersionFloor(bundlePath: string, version: string): Promise<void> {
  const file = versionFile(bundlePath);
  await writeFileAtomically(file, `${version}\n`);
}

/** The higher of two versions (either may be missing). */
export function higher(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined || semverValid(a) === null) return b;
  if (b === undefined || semverValid(b) === null) return a;
  return semverGt(b, a) ? b : a;
}

/**
 * Decides the version a release is installed as, and refuses a downgrade below `floor`.
 * With a public key (`trusted`), only the signed or handshake version counts and one is required
 * (ERR_OVERSEER_VERSION_UNTRUSTED); without, the source's declared version fills in when the
 * release reports none, and a release with no version at all passes (as before).
 */
export function decideVersion(
  claims: VersionClaims,
  floor: string | undefined,
  options: { readonly trusted: boolean; readonly allowDowngrade: boolean; readonly source: string },
): string | undefined {
  const { source } = options;
  const declared = claims.declared !== undefined && semverValid(claims.declared) !== null ? claims.declared : undefined;
  const version = options.trusted ? claims.signed ?? claims.handshake ?? undefined : claims.handshake ?? declared;
  if (version === undefined) {
    if (!options.trusted || options.allowDowngrade) return undefined;
    throw new OverseerError(
      'ERR_OVERSEER_VERSION_UNTRUSTED',
      `${source} carries no version that can be trusted, and verify.publicKey is set, so an older release could not be told apart; ` +
        'sign it with its version in the trusted comment (minisign -S -t "version:1.2.3"), or make it answer the check with a version, ' +
        'or set verify.allowDowngrade',
      { subject: source },
    );
  }
  const valid = semverValid(version);
  if (options.allowDowngrade) return valid ?? version;
  if (valid === null) {
    // Without a key and without a floor there is nothing to compare with: kept as before.
    if (!options.trusted && floor === undefined) return version;
    throw new OverseerError('ERR_OVERSEER_CHECK_FAILED', `${source} reports version ${JSON.stringify(version)}, which is not semver`, { subject: source });
  }
  if (floor !== undefined && semverValid(floor) !== null && semverLt(valid, floor)) {
    throw new OverseerError(
      'ERR_OVERSEER_DOWNGRADE',
      `${source} is version ${valid}, older than ${floor}, the highest version installed; set verify.allowDowngrade to accept it`,
      { subject: source },
    );
  }
  return valid;
}
