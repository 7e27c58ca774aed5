/**
 * ManifestFetcher: releases read through a signed manifest (src/manifest/document.ts) from any
 * source (manifest-sources.ts). Each poll: locate the manifest (one cheap request); when it
 * changed, read it and its `.minisig`, verify the signature with verify.publicKey (any of the
 * keys), parse it, refuse it when expired or older than the last accepted sequence (kept beside
 * the bundle), then let chooseRelease say what this instance runs. The release it hands the
 * master carries the manifest's size and sha256, and its body is cut at that size.
 * Refusals are `manifest-refused` events naming the field, and fail the poll: nothing is
 * downloaded, the running build keeps serving.
 */
import { Readable } from 'node:stream';
import { describeError, isOverseerError, OverseerError } from '../src/errors.js';
import type { EventBody } from '../src/events.js';
import { assertFresh, chooseRelease, DEFAULT_CHANNEL, isChannelName, MAX_MANIFEST_BYTES, parseManifest, type Manifest, type ManifestRelease, type ReleaseChoice } from '../src/manifest/document.js';
import { readSequence, resolveInstanceId, writeSequence } from '../src/manifest/state.js';
import type { ManifestStatus } from '../src/manifest/status.js';

export type { ManifestStatus } from '../src/manifest/status.js';
import { assertOptions, nestedNames, optionNames, rule, rules, type OptionSpec } from '../src/options.js';
import type { FetchContext, Fetcher, FetchResult, Release } from '../src/upgrade/fetcher.js';
import { pickKey } from '../src/upgrade/keys.js';
import { parseSignature, verifySignature } from '../src/upgrade/minisign.js';
import {
  FILE_MANIFEST_SPEC, fileTransport, GITHUB_MANIFEST_SPEC, githubTransport, HTTP_MANIFEST_SPEC, httpTransport, S3_MANIFEST_SPEC, s3Transport,
  type FileManifestOptions, type GitHubManifestOptions, type HttpManifestOptions, type Located, type ManifestTransport, type S3ManifestOptions,
} from './manifest-sources.js';

export interface ManifestFetcherOptions {
  /** The manifest's URL (and HttpFetcher's options: headers, timeout, download limits). */
  readonly http?: HttpManifestOptions;
  /** The manifest's bucket and key (and the S3 client's options). */
  readonly s3?: S3ManifestOptions;
  /** The manifest's path. */
  readonly file?: FileManifestOptions;
  /** The release (tag) of a GitHub repository that holds manifest.json and the artifacts. */
  readonly github?: GitHubManifestOptions;
  /** The channel this instance follows. @default 'stable' */
  readonly channel?: string;
  /** This instance's identity for staged rollouts. @default $OVERSEER_INSTANCE_ID, else an id generated on first start and kept beside the bundle */
  readonly instanceId?: string;
  /** Take a lower release when the channel offers nothing newer (after a switch to a channel that is behind). @default false */
  readonly allowDowngrade?: boolean;
  /** How often the master polls, in ms. @default 300000 */
  readonly interval?: number;
  /** Spread of the polls, a fraction of the interval (0 to 0.5). @default 0.2 */
  readonly jitter?: number;
}

const SOURCES = { http: HTTP_MANIFEST_SPEC, s3: S3_MANIFEST_SPEC, file: FILE_MANIFEST_SPEC, github: GITHUB_MANIFEST_SPEC } as const;
type SourceName = keyof typeof SOURCES;

const SPEC: OptionSpec = {
  http: rule('the manifest URL and HttpFetcher options, { url, … }', (value) => typeof value === 'object' && value !== null),
  s3: rule('{ bucket, key, … }', (value) => typeof value === 'object' && value !== null),
  file: rule('{ path }', (value) => typeof value === 'object' && value !== null),
  github: rule('{ owner, repo, tag?, asset? }', (value) => typeof value === 'object' && value !== null),
  channel: rule('a channel name (lower-case letters, digits, ".", "_", "-")', (value) => typeof value === 'string' && isChannelName(value)),
  instanceId: rules.nonEmptyString,
  allowDowngrade: rules.boolean,
  interval: rules.interval,
  jitter: rule('a fraction from 0 to 0.5', (value) => typeof value === 'number' && value >= 0 && value <= 0.5),
};

const DEFAULT_INTERVAL = 300_000;
const MAX_SIGNATURE_BYTES = 16 * 1024;


export class ManifestFetcher implements Fetcher {
  static readonly options: OptionSpec = SPEC;
  readonly name: string;
  readonly interval: number;
  readonly jitter: number;
  readonly #transport: ManifestTransport;
  readonly #channel: string;
  readonly #givenId: string | undefined;
  readonly #allowDowngrade: boolean;
  #instanceId: string | undefined;
  #lastSequence: number | undefined;
  #stateRead = false;
  /** The last manifest accepted, and the identity of the bytes it came from. */
  #accepted: { readonly id: string | undefined; readonly manifest: Manifest } | undefined;
  #choice: ReleaseChoice | undefined;
  #refused: ManifestStatus['refused'];
  #said = '';

  constructor(options: ManifestFetcherOptions) {
    assertOptions('ManifestFetcher', options, SPEC);
    const given = (Object.keys(SOURCES) as SourceName[]).filter((key) => options[key] !== undefined);
    if (given.length !== 1) {
      throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `ManifestFetcher needs exactly one of http, s3, file, github (where the manifest is); it was given ${given.length === 0 ? 'none' : given.join(' and ')}`, {
        subject: 'ManifestFetcher',
      });
    }
    const source = given[0]!;
    assertOptions(nestedNames(optionNames('ManifestFetcher'), source), options[source], SOURCES[source]);
    this.#transport =
      source === 'http' ? httpTransport(options.http!)
      : source === 's3' ? s3Transport(options.s3!)
      : source === 'file' ? fileTransport(options.file!)
      : githubTransport(options.github!);
    this.name = `manifest-${source}`;
    this.interval = options.interval ?? DEFAULT_INTERVAL;
    this.jitter = options.jitter ?? 0.2;
    this.#channel = options.channel ?? DEFAULT_CHANNEL;
    this.#givenId = options.instanceId;
    this.#allowDowngrade = options.allowDowngrade ?? false;
  }

  /** The manifest as this instance sees it, for `overseer ctl status`. */
  manifestStatus(): ManifestStatus {
    const manifest = this.#accepted?.manifest;
    return {
      source: this.#transport.source,
      channel: this.#channel,
      instanceId: this.#instanceId,
      sequence: manifest?.sequence,
      expires: manifest?.expires,
      newest: this.#choice?.newest,
      action: this.#choice?.action,
      reason: this.#choice?.reason,
      refused: this.#refused,
    };
  }

  async fetch(context: FetchContext): Promise<FetchResult> {
    const warn = (message: string) => context.warn?.(message);
    if (!this.#stateRead) {
      this.#instanceId = await resolveInstanceId(context.bundlePath, this.#givenId, warn);
      if (context.bundlePath !== undefined) this.#lastSequence = await readSequence(context.bundlePath, warn);
      this.#stateRead = true;
    }
    let choice: ReleaseChoice;
    let manifest: Manifest;
    try {
      const read = await this.#read(context);
      manifest = read.manifest;
      assertFresh(manifest, { now: Date.now(), lastSequence: this.#lastSequence, source: this.#transport.source });
      this.#accepted = read;
      choice = chooseRelease(manifest, {
        channel: this.#channel,
        instanceId: this.#instanceId!,
        currentVersion: this.#currentVersion(manifest, context),
        allowDowngrade: this.#allowDowngrade,
      });
    } catch (error) {
      this.#refuse(error, context.emit);
      throw error;
    }
    if (this.#lastSequence === undefined || manifest.sequence > this.#lastSequence) {
      this.#lastSequence = manifest.sequence;
      if (context.bundlePath !== undefined) {
        await writeSequence(context.bundlePath, manifest.sequence).catch((error: unknown) => warn(`cannot keep the manifest sequence beside ${context.bundlePath}: ${describeError(error)}`));
      }
    }
    this.#refused = undefined;
    this.#choice = choice;
    this.#announce(manifest, choice, context.emit);
    if (choice.action === 'stay' || choice.release === undefined) return { type: 'none' };
    try {
      return { type: 'update', release: this.#release(manifest, choice.release, choice.action !== 'upgrade') };
    } catch (error) {
      // The source cannot hold that path (a GitHub asset in a folder).
      this.#refuse(error, context.emit);
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.#transport.close();
  }

  /** The accepted manifest when its bytes did not change, else the manifest read, verified and parsed anew. */
  async #read(context: FetchContext): Promise<{ readonly id: string | undefined; readonly manifest: Manifest }> {
    const { signal } = context;
    const keys = context.publicKeys ?? [];
    if (keys.length === 0) {
      throw new OverseerError('ERR_OVERSEER_SIGNATURE_MISSING', `${this.#transport.source}: a ManifestFetcher needs verify.publicKey, the key (or keys) the manifest is signed with; see docs/releases.md`, {
        subject: 'verify.publicKey',
      });
    }
    const located = await this.#transport.manifest.locate(signal);
    if (located.id !== undefined && located.id === this.#accepted?.id) return this.#accepted;
    const bytes = await readSmall(located, MAX_MANIFEST_BYTES, 'manifest', signal);
    const signatureText = (await readSmall(await this.#transport.signature.locate(signal), MAX_SIGNATURE_BYTES, 'manifest signature', signal)).toString('utf8');
    // Only signed bytes are parsed.
    const signature = parseSignature(signatureText, this.#transport.signature.source);
    verifySignature(pickKey(keys, signature), signature, { bytes });
    return { id: located.id, manifest: parseManifest(bytes.toString('utf8'), this.#transport.source) };
  }

  /** The running version: the release (of any channel) whose sha256 is the running bundle's, else what the master says. */
  #currentVersion(manifest: Manifest, context: FetchContext): string | undefined {
    // Any channel: after a channel switch the running build is listed in the old one.
    for (const channel of Object.values(manifest.channels)) {
      const running = channel.releases.find((release) => release.sha256 === context.currentSha256);
      if (running !== undefined) return running.version;
    }
    return context.currentVersion;
  }

  #release(manifest: Manifest, chosen: ManifestRelease, downgrade: boolean): Release {
    const reader = () => this.#transport.artifact(chosen.path);
    const probe = reader();
    return {
      id: `${chosen.version}:${chosen.sha256}`,
      size: chosen.size,
      sha256: chosen.sha256,
      version: chosen.version,
      gzip: chosen.path.endsWith('.gz'),
      source: probe.source,
      manifest: { version: chosen.version, sequence: manifest.sequence, downgrade },
      open: async (signal) => {
        const artifact = reader();
        try {
          const located = await artifact.locate(signal);
          const body = await located.open(signal);
          // Endless-data protection: the body ends at the signed size, whatever the server sends.
          const cut = Readable.from(cutAt(body, chosen.size), { objectMode: false });
          cut.once('close', () => void artifact.close());
          return cut;
        } catch (error) {
          await artifact.close();
          throw error;
        }
      },
    };
  }

  #refuse(error: unknown, emit: ((event: EventBody) => void) | undefined): void {
    const code = isOverseerError(error) ? error.code : 'ERR_OVERSEER_FETCH_FAILED';
    // Network trouble is the fetch loop's fetch-failed; a manifest refused is said once per fault.
    if (!/^ERR_OVERSEER_(MANIFEST_|SIGNATURE_)/.test(code)) return;
    const message = describeError(error);
    this.#refused = { code, error: message, at: Date.now() };
    const key = `refused\n${code}\n${message}`;
    if (this.#said === key) return;
    this.#said = key;
    const subject = isOverseerError(error) ? error.subject : undefined;
    emit?.({ type: 'manifest-refused', source: this.#transport.source, code, field: subject, error: message });
  }

  #announce(manifest: Manifest, choice: ReleaseChoice, emit: ((event: EventBody) => void) | undefined): void {
    const key = `accepted\n${manifest.sequence}\n${choice.action}\n${choice.release?.version}\n${choice.reason}`;
    if (this.#said === key) return;
    this.#said = key;
    emit?.({
      type: 'manifest-accepted', source: this.#transport.source, sequence: manifest.sequence, expires: manifest.expires, channel: this.#channel,
      instanceId: this.#instanceId!, action: choice.action, version: choice.release?.version, bucket: choice.newest?.bucket, reason: choice.reason,
    });
  }
}

/** The bytes of a small object, refused past `limit` (a manifest is not megabytes). */
async function readSmall(located: Located, limit: number, what: string, signal: AbortSignal): Promise<Buffer> {
  if (located.size !== undefined && located.size > limit) {
    throw new OverseerError('ERR_OVERSEER_MANIFEST_INVALID', `the ${what} ${located.source} is ${located.size} bytes, more than ${limit}; is it the right object?`, { subject: '(the document)' });
  }
  const body = await located.open(signal);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      total += chunk.length;
      if (total > limit) {
        throw new OverseerError('ERR_OVERSEER_MANIFEST_INVALID', `the ${what} ${located.source} is more than ${limit} bytes; is it the right object?`, { subject: '(the document)' });
      }
      chunks.push(Buffer.from(chunk));
    }
  } finally {
    if (body instanceof Readable) body.destroy();
  }
  return Buffer.concat(chunks);
}

/** The body up to `size` bytes; what comes after is never read (the source is destroyed). */
async function* cutAt(body: Readable | AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let left = size;
  try {
    for await (const chunk of body) {
      const bytes = Buffer.from(chunk);
      if (bytes.length >= left) {
        if (left > 0) yield bytes.subarray(0, left);
        return;
      }
      left -= bytes.length;
      yield bytes;
    }
  } finally {
    if (body instanceof Readable) body.destroy();
  }
}
