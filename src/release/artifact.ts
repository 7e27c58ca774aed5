/**
 * Artifacts beside a manifest: where one is relative to the manifest's folder (refusing any that
 * is outside it, through `..` or a symlink), its size and sha256 for `create`, and the check
 * `verify` makes, as an instance would: at most the declared size is read, then the sha256.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { OverseerError } from '../errors.js';
import { unsafePath, type ManifestRelease } from '../manifest/document.js';

export interface ArtifactFacts {
  /** The path relative to the manifest's folder, '/'-separated, as the manifest stores it. */
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

const refuse = (message: string, subject: string): OverseerError => new OverseerError('ERR_OVERSEER_RELEASE_REFUSED', message, { subject });

/** The artifact at `artifact` (a path as the user typed it) as a manifest entry for `manifestPath`. */
export async function describeArtifact(manifestPath: string, artifact: string): Promise<ArtifactFacts> {
  let folder: string;
  try {
    folder = await realpath(dirname(resolve(manifestPath)));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw refuse(`the manifest's folder ${dirname(manifestPath)} does not exist; artifacts and the manifest live there`, manifestPath);
    throw error;
  }
  let real: string;
  try {
    real = await realpath(resolve(artifact));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw refuse(`the artifact ${artifact} does not exist`, artifact);
    throw error;
  }
  const path = relative(folder, real);
  if (path === '' || path.startsWith(`..${sep}`) || path === '..' || isAbsolute(path)) {
    throw refuse(
      `the artifact ${artifact} (${real}) is outside the manifest's folder ${folder}; artifacts are published next to the manifest or below it ` +
        '(instances fetch them relative to the manifest): copy it into that folder first',
      artifact,
    );
  }
  const entryPath = path.split(sep).join('/');
  const manifestName = relative(folder, resolve(folder, basename(manifestPath)));
  if (entryPath === manifestName || entryPath === `${manifestName}.minisig` || entryPath === `${manifestName}.lock`) {
    throw refuse(`the artifact ${artifact} is the manifest or its signature; give the file to publish`, artifact);
  }
  const unsafe = unsafePath(entryPath);
  if (unsafe !== undefined) throw refuse(`the artifact path ${JSON.stringify(entryPath)} cannot go into a manifest: ${unsafe}; rename the file`, artifact);
  const info = await stat(real);
  if (!info.isFile()) throw refuse(`the artifact ${artifact} is not a regular file`, artifact);
  if (info.size === 0) throw refuse(`the artifact ${artifact} is empty`, artifact);
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(real)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { path: entryPath, size, sha256: hash.digest('hex') };
}

/**
 * Checks the artifact of `release` beside the manifest at `manifestPath`. Returns the problem
 * in one line, or undefined when its size and sha256 match.
 */
export async function checkArtifact(manifestPath: string, release: ManifestRelease): Promise<string | undefined> {
  const folder = await realpath(dirname(resolve(manifestPath)));
  const file = resolve(folder, ...release.path.split('/'));
  try {
    await lstat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return `${release.path} is missing`;
    throw error;
  }
  const real = await realpath(file);
  const inside = relative(folder, real);
  if (inside.startsWith(`..${sep}`) || inside === '..' || isAbsolute(inside)) return `${release.path} is a link to ${real}, outside the manifest's folder`;
  const info = await stat(real);
  if (!info.isFile()) return `${release.path} is not a regular file`;
  // Read one byte past the declared size, no more: enough to tell "longer", as an instance cuts it.
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(real, { start: 0, end: release.size })) {
    const bytes = chunk as Buffer;
    const keep = Math.min(bytes.length, release.size - size);
    if (keep > 0) hash.update(bytes.subarray(0, keep));
    size += bytes.length;
  }
  if (size > release.size) return `${release.path} is longer than the ${release.size} bytes the manifest gives (${info.size} bytes)`;
  if (size < release.size) return `${release.path} is ${size} bytes, not the ${release.size} the manifest gives`;
  const sha256 = hash.digest('hex');
  if (sha256 !== release.sha256) return `${release.path}: sha256 ${sha256} differs from the manifest's ${release.sha256}`;
  return undefined;
}
