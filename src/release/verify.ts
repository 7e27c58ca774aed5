/**
 * `overseer release verify`: checks a manifest folder as an instance would before it trusts it:
 * the signature (with any of the trusted public keys, as during a key rotation), the schema,
 * the expiry, and every artifact's size and sha256. Unlike an instance it goes on after the first
 * problem, so the publisher sees them all at once.
 */
import { readFile, stat } from 'node:fs/promises';
import { isOverseerError, describeError } from '../errors.js';
import { MAX_MANIFEST_BYTES, parseManifest, parseUtc, type Manifest } from '../manifest/document.js';
import { parseSignature, verifySignature, type MinisignPublicKey } from '../upgrade/minisign.js';
import { checkArtifact } from './artifact.js';
import { SIGNATURE_SUFFIX } from './manifest-file.js';
import semverCompare from 'semver/functions/compare.js';

export interface VerifyReport {
  /** What was checked and found good, one line each. */
  readonly ok: readonly string[];
  /** What an instance would refuse, one line each; empty when the manifest is good to publish. */
  readonly problems: readonly string[];
  /** Worth knowing but not refused (an expiry close at hand). */
  readonly warnings: readonly string[];
  readonly manifest: Manifest | undefined;
}

const SOON_MS = 3 * 86_400_000;
const MAX_SIGNATURE_BYTES = 16 * 1024;

export async function verifyManifest(options: {
  manifestPath: string;
  publicKeys: readonly MinisignPublicKey[];
  signaturePath?: string | undefined;
  now?: Date;
}): Promise<VerifyReport> {
  const ok: string[] = [];
  const problems: string[] = [];
  const warnings: string[] = [];
  const { manifestPath } = options;
  const signaturePath = options.signaturePath ?? `${manifestPath}${SIGNATURE_SUFFIX}`;
  const now = (options.now ?? new Date()).getTime();
  const size = (await stat(manifestPath)).size;
  if (size > MAX_MANIFEST_BYTES) {
    problems.push(`${manifestPath} is ${size} bytes, more than the ${MAX_MANIFEST_BYTES} an instance reads; prune old releases`);
    return { ok, problems, warnings, manifest: undefined };
  }
  const bytes = await readFile(manifestPath);

  // The signature first, as an instance checks it before it reads a field.
  let signatureText: string | undefined;
  try {
    // A .minisig is a few hundred bytes; do not read a huge file put in its place.
    const signatureSize = (await stat(signaturePath)).size;
    signatureText = signatureSize > MAX_SIGNATURE_BYTES ? ' '.repeat(MAX_SIGNATURE_BYTES + 1) : await readFile(signaturePath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    problems.push(`no signature: ${signaturePath} does not exist; sign with \`overseer release sign --manifest ${manifestPath} --key SECRET_KEY\``);
  }
  if (signatureText !== undefined) {
    try {
      const signature = parseSignature(signatureText, signaturePath);
      const key = options.publicKeys.find((each) => each.keyId === signature.keyId);
      if (key === undefined) {
        problems.push(
          `${signaturePath} is signed by key ${signature.keyId}, which is not among the trusted public keys (${options.publicKeys.map((each) => each.keyId).join(', ')})`,
        );
      } else {
        const result = verifySignature(key, signature, { bytes });
        ok.push(`signature: good, key ${result.keyId}, trusted comment ${JSON.stringify(result.trustedComment)}`);
      }
    } catch (error) {
      if (!isOverseerError(error)) throw error;
      problems.push(error.message);
    }
  }

  let manifest: Manifest | undefined;
  try {
    manifest = parseManifest(bytes.toString('utf8'), manifestPath);
    ok.push(`schema: ${manifest.schema}, sequence ${manifest.sequence}`);
  } catch (error) {
    if (!isOverseerError(error)) throw error;
    problems.push(error.message);
    return { ok, problems, warnings, manifest };
  }

  const expires = parseUtc(manifest.expires) as number;
  if (expires <= now) problems.push(`expired at ${manifest.expires}: instances refuse it; write it again (any write sets a new --expires) and sign it`);
  else if (expires - now < SOON_MS) warnings.push(`expires ${manifest.expires}, in less than 3 days: publish again before then or instances refuse it`);
  else ok.push(`expires ${manifest.expires}`);

  const names = Object.keys(manifest.channels);
  if (names.length === 0) problems.push('no channels: instances find no release in it');
  for (const name of names) {
    const releases = manifest.channels[name]?.releases ?? [];
    for (const release of releases) {
      let problem: string | undefined;
      try {
        problem = await checkArtifact(manifestPath, release);
      } catch (error) {
        problem = `${release.path} cannot be read (${describeError(error)})`;
      }
      const state = `${release.pulled ? 'pulled' : `rollout ${release.rollout} %`}`;
      if (problem === undefined) ok.push(`${name} ${release.version}: ${release.path}, ${release.size} bytes, sha256 matches (${state})`);
      else problems.push(`${name} ${release.version}: ${problem}`);
    }
    const offered = releases.filter((release) => !release.pulled).sort((a, b) => semverCompare(b.version, a.version));
    if (offered.length === 0) warnings.push(`channel ${name} offers no release that is not pulled: its instances keep what they run`);
  }
  return { ok, problems, warnings, manifest };
}
