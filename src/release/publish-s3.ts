/**
 * `overseer release publish --s3`: uploads a signed manifest folder to S3 (or an S3-compatible
 * store) in the order that keeps every poll safe: the artifacts the manifest names, then the
 * `.minisig`, then the manifest. It checks the folder first (signature present, artifacts
 * matching, and with --public-key everything `verify` checks), skips artifacts already there
 * with the same size, and refuses to overwrite one with another size: a published version's
 * bytes never change. The SDK (@aws-sdk/client-s3, an optional peer dependency) loads here only.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { OverseerError } from '../errors.js';
import type { Manifest } from '../manifest/document.js';
import { parseSignature, type MinisignPublicKey } from '../upgrade/minisign.js';
import { checkArtifact } from './artifact.js';
import { requireManifestFile, SIGNATURE_SUFFIX } from './manifest-file.js';
import { verifyManifest } from './verify.js';

export interface S3Target {
  readonly bucket: string;
  /** Key prefix, '' or ending in '/'. */
  readonly prefix: string;
  readonly endpoint?: string | undefined;
  readonly region?: string | undefined;
  readonly forcePathStyle?: boolean;
  /** For tests; default: the SDK's own chain (environment, profile, instance role). */
  readonly credentials?: { accessKeyId: string; secretAccessKey: string };
}

export const ARTIFACT_CACHE_CONTROL = 'public, max-age=31536000, immutable';
export const MANIFEST_CACHE_CONTROL = 'max-age=60';

const refuse = (message: string, subject: string): OverseerError => new OverseerError('ERR_OVERSEER_RELEASE_REFUSED', message, { subject });

/** Reads `s3://bucket/prefix`. */
export function parseS3Url(text: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(text);
  if (match === null) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `--s3 ${JSON.stringify(text)} is not s3://BUCKET or s3://BUCKET/PREFIX (a bucket name in lower case)`, { subject: 'release' });
  }
  const rest = match[2] ?? '';
  if (rest.split('/').some((segment, index, all) => segment === '..' || segment === '.' || (segment === '' && index < all.length - 1))) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `--s3 ${JSON.stringify(text)}: the prefix has an empty, "." or ".." segment`, { subject: 'release' });
  }
  return { bucket: match[1] as string, prefix: rest === '' || rest.endsWith('/') ? rest : `${rest}/` };
}

/** Uploads the folder of `manifestPath`; returns one line per object, for the output. */
export async function publishToS3(options: { manifestPath: string; target: S3Target; publicKeys: readonly MinisignPublicKey[] }): Promise<string[]> {
  const { manifestPath, target } = options;
  const { manifest } = await requireManifestFile(manifestPath);
  await checkFolder(manifestPath, manifest, options.publicKeys);
  const sdk = await import('@aws-sdk/client-s3').catch((error: unknown) => {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', 'release publish --s3 needs the package @aws-sdk/client-s3; install it with `npm install @aws-sdk/client-s3`', {
      subject: 'release',
      cause: error,
    });
  });
  const client = new sdk.S3Client({
    ...(target.endpoint === undefined ? {} : { endpoint: target.endpoint }),
    ...(target.region === undefined ? {} : { region: target.region }),
    ...(target.forcePathStyle === true ? { forcePathStyle: true } : {}),
    ...(target.credentials === undefined ? {} : { credentials: target.credentials }),
    // Plain uploads that every S3-compatible store takes (the SDK's default adds CRC32 trailers some do not).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const where = (key: string) => `s3://${target.bucket}/${key}`;
  const lines: string[] = [];
  const folder = dirname(resolve(manifestPath));
  try {
    const seen = new Set<string>();
    for (const channel of Object.values(manifest.channels)) {
      for (const release of channel.releases) {
        if (seen.has(release.path)) continue;
        seen.add(release.path);
        const key = `${target.prefix}${release.path}`;
        const existing = await headSize(client, sdk, target.bucket, key);
        if (existing === release.size) {
          lines.push(`${where(key)}: already there (${release.size} bytes)`);
          continue;
        }
        if (existing !== undefined) {
          throw refuse(
            `${where(key)} exists with ${existing} bytes but the manifest gives ${release.size} for ${release.path}; a published artifact's bytes never change: publish under a new version and path (or delete the object if no manifest ever named it)`,
            where(key),
          );
        }
        const body = await readFile(join(folder, ...release.path.split('/')));
        await client.send(new sdk.PutObjectCommand({ Bucket: target.bucket, Key: key, Body: body, CacheControl: ARTIFACT_CACHE_CONTROL }));
        lines.push(`${where(key)}: uploaded (${release.size} bytes)`);
      }
    }
    // The signature before the manifest: a poll in between sees a mismatch, refuses it, and takes it at the next poll.
    for (const [name, contentType] of [[`${basenameOf(manifestPath)}${SIGNATURE_SUFFIX}`, 'text/plain'], [basenameOf(manifestPath), 'application/json']] as const) {
      const key = `${target.prefix}${name}`;
      await client.send(
        new sdk.PutObjectCommand({ Bucket: target.bucket, Key: key, Body: await readFile(join(folder, name)), CacheControl: MANIFEST_CACHE_CONTROL, ContentType: contentType }),
      );
      lines.push(`${where(key)}: uploaded`);
    }
  } catch (error) {
    if (error instanceof OverseerError) throw error;
    throw new OverseerError('ERR_OVERSEER_RELEASE_REFUSED', `uploading to s3://${target.bucket}/${target.prefix} failed after ${lines.length} object(s): ${(error as Error).message}`, {
      subject: `s3://${target.bucket}/${target.prefix}`,
      cause: error,
    });
  } finally {
    client.destroy();
  }
  return lines;
}

/** What must hold before anything is uploaded: a signature, matching artifacts, and with keys, all of verify. */
async function checkFolder(manifestPath: string, manifest: Manifest, publicKeys: readonly MinisignPublicKey[]): Promise<void> {
  const problems: string[] = [];
  if (publicKeys.length > 0) {
    problems.push(...(await verifyManifest({ manifestPath, publicKeys })).problems);
  } else {
    try {
      parseSignature(await readFile(`${manifestPath}${SIGNATURE_SUFFIX}`, 'utf8'), `${manifestPath}${SIGNATURE_SUFFIX}`);
    } catch (error) {
      problems.push(
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? `${manifestPath} is not signed (no ${manifestPath}${SIGNATURE_SUFFIX}); sign it with \`overseer release sign\``
          : (error as Error).message,
      );
    }
    for (const [name, channel] of Object.entries(manifest.channels)) {
      for (const release of channel.releases) {
        const problem = await checkArtifact(manifestPath, release);
        if (problem !== undefined) problems.push(`${name} ${release.version}: ${problem}`);
      }
    }
  }
  if (problems.length > 0) throw refuse(`nothing uploaded: ${problems.join('; ')}`, manifestPath);
}

async function headSize(
  client: import('@aws-sdk/client-s3').S3Client,
  sdk: typeof import('@aws-sdk/client-s3'),
  bucket: string,
  key: string,
): Promise<number | undefined> {
  try {
    const head = await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.ContentLength;
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || (error as Error).name === 'NotFound') return undefined;
    throw error;
  }
}

function basenameOf(path: string): string {
  return path.split(/[\\/]/).pop() as string;
}
