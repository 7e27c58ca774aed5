/**
 * S3Fetcher: polls one S3 object with HeadObject, reads its `.sha256` and `.minisig` sidecar
 * objects, and opens it with GetObject pinned to the polled ETag.
 * @aws-sdk/client-s3 (an optional peer) is loaded at the first fetch, never at import.
 */
import { Readable } from 'node:stream';
import type * as S3Sdk from '@aws-sdk/client-s3';
import { OverseerError } from '../src/errors.js';
import type { FetchContext, FetchResult, Fetcher, Release } from '../src/upgrade/fetcher.js';
import { assertOptions, required, rule, rules, type OptionSpec } from '../src/options.js';
import { DOWNLOAD_LIMIT_SPEC, downloadLimits, limitDownload, type DownloadLimitOptions, type DownloadLimits } from './body.js';
import { assertSecureOption } from './redirects.js';
import { checkSignature, parseSha256, readSidecar } from './sidecars.js';

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface S3FetcherOptions extends DownloadLimitOptions {
  /** Bucket holding the release. */
  readonly bucket: string;
  /** Object key of the release; a key ending in `.gz` is inflated by the master. */
  readonly key: string;
  /** Poll interval in ms. @default 300000 */
  readonly interval?: number;
  /** @default 'us-east-1' */
  readonly region?: string;
  /** S3-compatible endpoint URL (MinIO, R2, s3rver), such as 'http://127.0.0.1:9000'. */
  readonly endpoint?: string | URL;
  /** Address the bucket in the path instead of the host name (most S3-compatible servers need it). */
  readonly forcePathStyle?: boolean;
  /** Static credentials or a provider; default: the SDK's chain (env, profile, instance role). */
  readonly credentials?: S3Credentials | (() => Promise<S3Credentials>);
  /** Accept a plain http: endpoint on a host other than loopback (warns once). @default false */
  readonly allowInsecureHttp?: boolean;
}

type S3Module = typeof S3Sdk;

const SPEC: OptionSpec = {
  bucket: required(rules.nonEmptyString),
  key: required(rules.nonEmptyString),
  interval: rules.interval,
  region: rules.nonEmptyString,
  endpoint: rules.httpUrl,
  forcePathStyle: rules.boolean,
  credentials: rule('{ accessKeyId, secretAccessKey, sessionToken? } (strings) or a function returning them', isCredentials),
  allowInsecureHttp: rules.boolean,
  ...DOWNLOAD_LIMIT_SPEC,
};
const DEFAULT_INTERVAL = 300_000;

/**
 * Releases from one S3 object: `id` is its ETag, `sha256` and `version` come from its metadata
 * (`x-amz-meta-sha256`, `x-amz-meta-version`) and the sidecar objects `<key>.sha256` and
 * `<key>.minisig` give its sha256 and signature. Throws ERR_OVERSEER_INVALID_CONFIG on bad options.
 */
export class S3Fetcher implements Fetcher {
  /** The options the constructor checks, for callers that name them their own way (`overseer run`'s file and flags). */
  static readonly options: OptionSpec = SPEC;
  readonly name = 's3';
  readonly interval: number;
  readonly #bucket: string;
  readonly #key: string;
  readonly #source: string;
  readonly #clientConfig: S3Sdk.S3ClientConfig;
  readonly #limits: DownloadLimits;
  #sdk: Promise<S3Module> | undefined;
  #client: S3Sdk.S3Client | undefined;

  constructor(options: S3FetcherOptions) {
    assertOptions('S3Fetcher', options, SPEC);
    const { bucket, key, endpoint, forcePathStyle } = options;
    this.#bucket = bucket;
    this.#key = key;
    this.#source = `s3://${bucket}/${key}`;
    this.interval = options.interval ?? DEFAULT_INTERVAL;
    this.#limits = downloadLimits(options);
    if (endpoint !== undefined) {
      assertSecureOption(new URL(String(endpoint)), 'S3Fetcher.endpoint', 'S3Fetcher', options.allowInsecureHttp ?? false);
    }
    const credentials = copyCredentials(options.credentials);
    this.#clientConfig = {
      region: options.region ?? 'us-east-1',
      // The default (WHEN_SUPPORTED) sends aws-chunked bodies and validates CRCs that several
      // S3-compatible servers get wrong (s3rver stores the chunk framing as the object).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(endpoint === undefined ? {} : { endpoint: String(endpoint) }),
      ...(forcePathStyle === undefined ? {} : { forcePathStyle }),
      ...(credentials === undefined ? {} : { credentials }),
    };
  }

  async fetch(context: FetchContext): Promise<FetchResult> {
    try {
      const { sdk, client } = await this.#connect();
      const { signal } = context;
      const [head, sha256Text, signatureText] = await Promise.all([
        client.send(new sdk.HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key }), { abortSignal: signal }),
        this.#readSidecar(`${this.#key}.sha256`, 'sha256 sidecar', signal),
        this.#readSidecar(`${this.#key}.minisig`, 'signature', signal),
      ]);
      const sidecarSha256 =
        sha256Text === undefined ? undefined : parseSha256(sha256Text, this.#sidecarSource('sha256'), this.#key.slice(this.#key.lastIndexOf('/') + 1));
      const signature = signatureText === undefined ? undefined : checkSignature(signatureText, this.#sidecarSource('minisig'));
      return { type: 'update', release: this.#describe(head, sidecarSha256, signature) };
    } catch (error) {
      if (context.signal.aborted) throw context.signal.reason;
      throw this.#failure(error, 'could not read');
    }
  }

  close(): void {
    this.#client?.destroy();
    this.#client = undefined;
  }

  /**
   * A sidecar object's text, or undefined when it does not exist; any other failure fails the
   * poll (a sidecar that cannot be read must not silently become "no signature").
   */
  async #readSidecar(key: string, what: string, signal: AbortSignal): Promise<string | undefined> {
    const source = `s3://${this.#bucket}/${key}`;
    const { sdk, client } = await this.#connect();
    let object: S3Sdk.GetObjectCommandOutput;
    try {
      object = await client.send(new sdk.GetObjectCommand({ Bucket: this.#bucket, Key: key }), { abortSignal: signal });
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (isMissing(error)) return undefined;
      // S3 hides whether a key exists from credentials that may not list the bucket.
      const hint =
        statusOf(error) === 403
          ? '; S3 also answers 403 for a missing key when the credentials may not list the bucket: grant s3:ListBucket, or publish the sidecar'
          : '';
      throw new OverseerError('ERR_OVERSEER_FETCH_FAILED', `S3Fetcher could not read the ${what} ${source}: ${reasonOf(error)}${hint}`, {
        cause: error,
        subject: source,
      });
    }
    const body = toReadable(object.Body);
    if (body === undefined) return '';
    const limited = limitDownload(body, { source, fetcher: 'S3Fetcher', limits: this.#limits, signal });
    try {
      return await readSidecar(limited, what, source);
    } finally {
      limited.destroy();
    }
  }

  #sidecarSource(extension: string): string {
    return `${this.#source}.${extension}`;
  }

  #describe(head: S3Sdk.HeadObjectCommandOutput, sidecarSha256: string | undefined, signature: string | undefined): Release {
    const etag = head.ETag;
    const metadata = head.Metadata ?? {};
    const metaSha256 = metadata['sha256'];
    if (metaSha256 !== undefined && !/^[0-9a-f]{64}$/i.test(metaSha256)) {
      throw new OverseerError(
        'ERR_OVERSEER_FETCH_FAILED',
        `${this.#source} has x-amz-meta-sha256 ${JSON.stringify(metaSha256)}, which is not 64 hex digits; fix the object's metadata or remove it`,
        { subject: this.#source },
      );
    }
    if (metaSha256 !== undefined && sidecarSha256 !== undefined && metaSha256.toLowerCase() !== sidecarSha256) {
      throw new OverseerError(
        'ERR_OVERSEER_FETCH_FAILED',
        `${this.#source} has x-amz-meta-sha256 ${metaSha256.toLowerCase()} but ${this.#sidecarSource('sha256')} says ${sidecarSha256}; publish one sha256, or make both agree`,
        { subject: this.#source },
      );
    }
    const sha256 = metaSha256 ?? sidecarSha256;
    const encoding = head.ContentEncoding?.toLowerCase() ?? '';
    return {
      id: etag === undefined ? undefined : etag.replace(/^(W\/)?"|"$/g, ''),
      size: head.ContentLength,
      sha256: sha256?.toLowerCase(),
      signature,
      version: metadata['version'],
      // Node's HTTP client does not decode Content-Encoding, so gzip stored that way still
      // arrives compressed and the master must inflate it too.
      gzip: this.#key.endsWith('.gz') || encoding.includes('gzip'),
      source: this.#source,
      open: (signal) => this.#open(etag, signal),
    };
  }

  async #open(etag: string | undefined, signal: AbortSignal): Promise<Readable> {
    try {
      const { sdk, client } = await this.#connect();
      const object = await client.send(
        new sdk.GetObjectCommand({
          Bucket: this.#bucket,
          Key: this.#key,
          // Pins the download to the polled object: a newer upload fails with 412, not mixed metadata.
          ...(etag === undefined ? {} : { IfMatch: etag }),
        }),
        { abortSignal: signal },
      );
      const body = toReadable(object.Body);
      if (body === undefined) {
        throw new OverseerError('ERR_OVERSEER_FETCH_FAILED', `${this.#source} answered without a body`, {
          subject: this.#source,
        });
      }
      return limitDownload(body, { source: this.#source, fetcher: 'S3Fetcher', limits: this.#limits, signal });
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw this.#failure(error, 'could not download');
    }
  }

  #connect(): Promise<{ sdk: S3Module; client: S3Sdk.S3Client }> {
    this.#sdk ??= import('@aws-sdk/client-s3').catch((error: unknown) => {
      this.#sdk = undefined;
      throw new OverseerError(
        'ERR_OVERSEER_FETCH_FAILED',
        'S3Fetcher needs the package @aws-sdk/client-s3; install it with `npm install @aws-sdk/client-s3`',
        { cause: error, subject: '@aws-sdk/client-s3' },
      );
    });
    return this.#sdk.then((sdk) => {
      this.#client ??= new sdk.S3Client(this.#clientConfig);
      return { sdk, client: this.#client };
    });
  }

  #failure(error: unknown, what: string): OverseerError {
    if (error instanceof OverseerError) return error;
    return new OverseerError('ERR_OVERSEER_FETCH_FAILED', `S3Fetcher ${what} ${this.#source}: ${reasonOf(error)}`, {
      cause: error,
      subject: this.#source,
    });
  }
}

/** What went wrong with an SDK call, and how to fix it where we can tell. */
function reasonOf(error: unknown): string {
  const status = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  const name = error instanceof Error ? error.name : typeof error;
  if (status === 404) return 'it does not exist (404); check S3Fetcher.bucket and S3Fetcher.key';
  if (status === 412) return 'it changed after the poll (412); the next poll picks up the new object';
  if (status === 403) return 'access was denied (403); check S3Fetcher.credentials and the bucket policy';
  if (status !== undefined) return `the server answered ${status} (${name})`;
  return error instanceof Error ? error.message : String(error);
}

/** NoSuchKey (404): the sidecar is simply not published. */
function isMissing(error: unknown): boolean {
  return statusOf(error) === 404 || (error instanceof Error && (error.name === 'NoSuchKey' || error.name === 'NotFound'));
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function toReadable(body: unknown): Readable | undefined {
  if (body instanceof Readable) return body;
  if (body instanceof ReadableStream) return Readable.fromWeb(body as import('node:stream/web').ReadableStream);
  return undefined;
}


function isCredentials(value: unknown): boolean {
  if (typeof value === 'function') return true;
  if (typeof value !== 'object' || value === null) return false;
  const given = value as Record<string, unknown>;
  return (
    typeof given['accessKeyId'] === 'string' &&
    typeof given['secretAccessKey'] === 'string' &&
    (given['sessionToken'] === undefined || typeof given['sessionToken'] === 'string')
  );
}

/** Copies the credentials: the SDK writes a `$source` field into them, which a frozen object refuses. */
function copyCredentials(value: S3FetcherOptions['credentials']): S3FetcherOptions['credentials'] {
  if (typeof value !== 'function') return value === undefined ? undefined : { ...value };
  return async () => ({ ...(await value()) });
}
