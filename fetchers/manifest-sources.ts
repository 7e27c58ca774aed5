/**
 * Where a manifest and its artifacts are read from: one reader per object (the manifest, its
 * `.minisig`, an artifact at a path relative to the manifest). `locate()` is the cheap request
 * (HEAD, HeadObject, stat) that names the object's current bytes; `open()` on what it returns
 * reads them. An idle poll is one `locate()` of the manifest.
 *
 *   http    a manifest URL; artifacts resolve against it (new URL(path, manifestUrl))
 *   s3      a manifest key; artifacts are keys under the manifest key's "folder"
 *   file    a manifest path; artifacts are files under its folder
 *   github  asset `manifest.json` of one release (tag), through the public download URLs
 *           (https://github.com/OWNER/REPO/releases/download/TAG/ASSET); a path names
 *           another asset of the same release (GitHub assets have no folders)
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type * as S3Sdk from '@aws-sdk/client-s3';
import { OverseerError } from '../src/errors.js';
import type { Release } from '../src/upgrade/fetcher.js';
import { DOWNLOAD_LIMIT_SPEC, downloadLimits, limitDownload, type DownloadLimitOptions } from './body.js';
import { HttpFetcher, type HttpFetcherOptions } from './http.js';
import { assertSecureOption } from './redirects.js';
import { rules, required, type OptionSpec } from '../src/options.js';

/** What `locate()` found: the object's identity (ETag, mtime…) when the source has one, and how to read it. */
export type Located = Pick<Release, 'id' | 'size' | 'source' | 'open'>;

export interface ObjectReader {
  readonly source: string;
  locate(signal: AbortSignal): Promise<Located>;
  close(): Promise<void> | void;
}

export interface ManifestTransport {
  readonly name: string;
  /** The manifest's URL, key or path, for messages. */
  readonly source: string;
  readonly manifest: ObjectReader;
  readonly signature: ObjectReader;
  /** A reader for the artifact at `relativePath` (checked by parseManifest); close it after the download. */
  artifact(relativePath: string): ObjectReader;
  /** Closes connections and clients; a later poll opens new ones. */
  close(): Promise<void>;
}

export type HttpManifestOptions = Omit<HttpFetcherOptions, 'interval' | 'sha256Url' | 'signatureUrl'>;

export const HTTP_MANIFEST_SPEC: OptionSpec = (() => {
  const { interval: _interval, sha256Url: _sha, signatureUrl: _sig, ...spec } = HttpFetcher.options;
  return spec;
})();

/** An HttpFetcher for one URL, read as an object (no sidecars). */
function httpReader(options: HttpManifestOptions, url: URL): ObjectReader {
  const fetcher = new HttpFetcher({ ...options, url });
  const source = `${url.origin}${url.pathname}`;
  return {
    source,
    async locate(signal) {
      const result = await fetcher.fetch({ signal, currentSha256: '', currentVersion: undefined, wants: { signature: false, sha256: false } });
      if (result.type === 'none') throw missing(source);
      return result.release;
    },
    close: () => fetcher.close(),
  };
}

export function httpTransport(options: HttpManifestOptions): ManifestTransport {
  const url = new URL(String(options.url));
  const signatureUrl = new URL(url.href);
  signatureUrl.pathname = `${url.pathname}.minisig`;
  const manifest = httpReader(options, url);
  const signature = httpReader(options, signatureUrl);
  return {
    name: 'http',
    source: `${url.origin}${url.pathname}`,
    manifest,
    signature,
    artifact: (relativePath) => httpReader(options, new URL(relativePath, url)),
    close: async () => {
      await Promise.all([manifest.close(), signature.close()]);
    },
  };
}

export interface GitHubManifestOptions extends DownloadLimitOptions {
  readonly owner: string;
  readonly repo: string;
  /** The release (tag) that holds the manifest and the artifacts. @default 'manifest' */
  readonly tag?: string;
  /** The manifest's asset name. @default 'manifest.json' */
  readonly asset?: string;
  /** Where release downloads are served. @default 'https://github.com' */
  readonly baseUrl?: string | URL;
  readonly timeout?: number;
  readonly allowInsecureHttp?: boolean;
}

const SEGMENT = /^[A-Za-z0-9._~+@=,-]+$/;
const name = (test: (value: unknown) => boolean) => ({ expected: 'a name of letters, digits and . _ ~ + @ = , -', test });
export const GITHUB_MANIFEST_SPEC: OptionSpec = {
  owner: required(name((value) => typeof value === 'string' && SEGMENT.test(value))),
  repo: required(name((value) => typeof value === 'string' && SEGMENT.test(value))),
  tag: name((value) => typeof value === 'string' && SEGMENT.test(value)),
  asset: name((value) => typeof value === 'string' && SEGMENT.test(value) && value !== '.' && value !== '..'),
  baseUrl: rules.httpUrl,
  timeout: rules.timeout,
  allowInsecureHttp: rules.boolean,
  ...DOWNLOAD_LIMIT_SPEC,
};

export function githubTransport(options: GitHubManifestOptions): ManifestTransport {
  const { owner, repo, tag = 'manifest', asset = 'manifest.json', baseUrl = 'https://github.com', ...rest } = options;
  const base = new URL(String(baseUrl));
  const root = new URL(`${base.pathname.replace(/\/$/, '')}/${owner}/${repo}/releases/download/${tag}/`, base);
  const http = httpTransport({ ...rest, url: new URL(asset, root) });
  return {
    ...http,
    name: 'github',
    artifact(relativePath) {
      if (relativePath.includes('/')) {
        throw new OverseerError(
          'ERR_OVERSEER_MANIFEST_UNSAFE_PATH',
          `the manifest ${http.source} names artifact ${JSON.stringify(relativePath)}, but a GitHub release asset has no folders; name an asset of release ${tag} (one path segment)`,
          { subject: relativePath },
        );
      }
      return http.artifact(relativePath);
    },
  };
}

export interface FileManifestOptions {
  /** The manifest file; artifacts are read from its folder. */
  readonly path: string;
}

export const FILE_MANIFEST_SPEC: OptionSpec = { path: required(rules.nonEmptyString) };

function fileReader(file: string): ObjectReader {
  return {
    source: file,
    async locate(signal) {
      signal.throwIfAborted();
      const stats = await stat(file).catch((error: NodeJS.ErrnoException) => {
        throw new OverseerError('ERR_OVERSEER_FETCH_FAILED', `${file} could not be read: ${error.code ?? error.message}`, { subject: file, cause: error });
      });
      if (!stats.isFile()) throw new OverseerError('ERR_OVERSEER_FETCH_FAILED', `${file} is not a regular file`, { subject: file });
      return {
        id: `${stats.mtimeMs}:${stats.size}:${stats.ino}`,
        size: stats.size,
        source: file,
        open: async (openSignal) => createReadStream(file, { signal: openSignal }),
      };
    },
    close: () => {},
  };
}

export function fileTransport(options: FileManifestOptions): ManifestTransport {
  const manifest = path.resolve(options.path);
  const folder = path.dirname(manifest);
  return {
    name: 'file',
    source: manifest,
    manifest: fileReader(manifest),
    signature: fileReader(`${manifest}.minisig`),
    artifact: (relativePath) => fileReader(path.join(folder, ...relativePath.split('/'))),
    close: async () => {},
  };
}

export interface S3ManifestOptions extends DownloadLimitOptions {
  readonly bucket: string;
  /** The manifest's key; artifacts are keys relative to its "folder" (the key up to its last "/"). */
  readonly key: string;
  readonly region?: string;
  readonly endpoint?: string | URL;
  readonly forcePathStyle?: boolean;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  readonly allowInsecureHttp?: boolean;
}

export const S3_MANIFEST_SPEC: OptionSpec = {
  bucket: required(rules.nonEmptyString),
  key: required(rules.nonEmptyString),
  region: rules.nonEmptyString,
  endpoint: rules.httpUrl,
  forcePathStyle: rules.boolean,
  credentials: { expected: '{ accessKeyId, secretAccessKey, sessionToken? }', test: (value) => typeof value === 'object' && value !== null },
  allowInsecureHttp: rules.boolean,
  ...DOWNLOAD_LIMIT_SPEC,
};

/** One client for the manifest, its signature and the artifacts; HeadObject to locate, GetObject (If-Match) to read. */
export function s3Transport(options: S3ManifestOptions): ManifestTransport {
  const { bucket, key, endpoint } = options;
  if (endpoint !== undefined) assertSecureOption(new URL(String(endpoint)), 'ManifestFetcher.s3.endpoint', 'ManifestFetcher', options.allowInsecureHttp ?? false);
  const limits = downloadLimits(options);
  const config: S3Sdk.S3ClientConfig = {
    region: options.region ?? 'us-east-1',
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(endpoint === undefined ? {} : { endpoint: String(endpoint) }),
    ...(options.forcePathStyle === undefined ? {} : { forcePathStyle: options.forcePathStyle }),
    ...(options.credentials === undefined ? {} : { credentials: { ...options.credentials } }),
  };
  let connection: Promise<{ sdk: typeof S3Sdk; client: S3Sdk.S3Client }> | undefined;
  const connect = () =>
    (connection ??= import('@aws-sdk/client-s3').then(
      (sdk) => ({ sdk, client: new sdk.S3Client(config) }),
      (error: unknown) => {
        connection = undefined;
        throw new OverseerError('ERR_OVERSEER_FETCH_FAILED', 'ManifestFetcher.s3 needs the package @aws-sdk/client-s3; install it with `npm install @aws-sdk/client-s3`', { cause: error, subject: '@aws-sdk/client-s3' });
      },
    ));
  const failure = (source: string, error: unknown): OverseerError => {
    if (error instanceof OverseerError) return error;
    const status = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
    return new OverseerError('ERR_OVERSEER_FETCH_FAILED', `ManifestFetcher could not read ${source}: ${status === 404 ? 'it does not exist (404)' : status !== undefined ? `the server answered ${status}` : error instanceof Error ? error.message : String(error)}`, { cause: error, subject: source });
  };
  const reader = (objectKey: string): ObjectReader => {
    const source = `s3://${bucket}/${objectKey}`;
    return {
      source,
      async locate(signal) {
        try {
          const { sdk, client } = await connect();
          const head = await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: objectKey }), { abortSignal: signal });
          const etag = head.ETag;
          return {
            id: etag?.replace(/^(W\/)?"|"$/g, ''),
            size: head.ContentLength,
            source,
            open: async (openSignal: AbortSignal) => {
              try {
                const object = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: objectKey, ...(etag === undefined ? {} : { IfMatch: etag }) }), { abortSignal: openSignal });
                const body = object.Body instanceof Readable ? object.Body : object.Body instanceof ReadableStream ? Readable.fromWeb(object.Body as import('node:stream/web').ReadableStream) : undefined;
                if (body === undefined) throw new OverseerError('ERR_OVERSEER_FETCH_FAILED', `${source} answered without a body`, { subject: source });
                return limitDownload(body, { source, fetcher: 'ManifestFetcher', limits, signal: openSignal });
              } catch (error) {
                if (openSignal.aborted) throw openSignal.reason;
                throw failure(source, error);
              }
            },
          };
        } catch (error) {
          if (signal.aborted) throw signal.reason;
          throw failure(source, error);
        }
      },
      close: () => {},
    };
  };
  const folder = key.includes('/') ? key.slice(0, key.lastIndexOf('/') + 1) : '';
  return {
    name: 's3',
    source: `s3://${bucket}/${key}`,
    manifest: reader(key),
    signature: reader(`${key}.minisig`),
    artifact: (relativePath) => reader(`${folder}${relativePath}`),
    close: async () => {
      const open = connection;
      connection = undefined;
      (await open?.catch(() => undefined))?.client.destroy();
    },
  };
}

function missing(source: string): OverseerError {
  return new OverseerError('ERR_OVERSEER_FETCH_FAILED', `${source} is not there`, { subject: source });
}

