/**
 * The contract between the master's fetch loop and a release source.
 *
 * A fetcher only says what the source holds now; the master owns timing (interval, backoff,
 * minFetchInterval), remembers which releases it installed or rejected, and decides whether
 * to download. So a fetcher may describe the same release on every poll: the master skips it
 * by `id` or `sha256` without opening it.
 */
import type { Readable } from 'node:stream';
import type { EventBody } from '../events.js';
import type { MinisignPublicKey } from './minisign.js';

/**
 * What the master's verification requires of every release. A fetcher that can look for a
 * signature or checksum where convention puts it (`<file>.minisig`, `<file>.sha256`) does so
 * when asked, and spares the request when not.
 */
export interface ReleaseWants {
  /** verify.publicKey is set: a release without a signature is refused. */
  readonly signature: boolean;
  /** verify.sha256 is 'required': a release without a sha256 is refused. */
  readonly sha256: boolean;
}

export interface FetchContext {
  /** Aborted when the master stops; pass it to every request. */
  readonly signal: AbortSignal;
  /** sha256 (hex) of the bundle the master runs now. */
  readonly currentSha256: string;
  /** Version the running build reported, when it has one. */
  readonly currentVersion: string | undefined;
  /** What verification requires; the master always sets it (absent, as from older callers: nothing). */
  readonly wants?: ReleaseWants | undefined;
  /** The keys of verify.publicKey (one or several), for a fetcher that verifies a manifest itself. */
  readonly publicKeys?: readonly MinisignPublicKey[] | undefined;
  /** The bundle the master runs; state kept beside it (a manifest's last sequence, the instance id). */
  readonly bundlePath?: string | undefined;
  /** The master's event emitter, for a fetcher's own events (manifest-accepted, manifest-refused). */
  readonly emit?: ((event: EventBody) => void) | undefined;
  /** The master's warning log. */
  readonly warn?: ((message: string) => void) | undefined;
}

/**
 * Set by a fetcher that read the release from a signed manifest it verified (fetchers/manifest.ts):
 * the manifest's sha256 and size bind the bytes, so no per-release signature is needed.
 */
export interface ManifestBinding {
  /** The version the signed manifest names for these bytes: a trusted version, like a signed comment. */
  readonly version: string;
  readonly sequence: number;
  /** The manifest sanctions going to this lower version (the running one is pulled). */
  readonly downgrade: boolean;
}

export interface Release {
  /**
   * The source's identity of this release (an ETag, a tag name, mtime+size). Two polls that
   * return the same id describe the same bytes; the master downloads an id once.
   * Leave it undefined when the source cannot tell: the master then downloads and compares
   * sha256 on every poll.
   */
  readonly id?: string | undefined;
  /** Bytes as published (compressed size for gzip), when the source knows. */
  readonly size?: number | undefined;
  /** sha256 (hex) of the bytes as published, from a sidecar, checksums.txt or metadata. */
  readonly sha256?: string | undefined;
  /** minisign signature file contents (the whole `.minisig` text) of the bytes as published. */
  readonly signature?: string | undefined;
  /** Version the source claims (a tag name); the handshake version is what is enforced. */
  readonly version?: string | undefined;
  /** The published bytes are gzip: the master inflates them (and caps the inflated size). */
  readonly gzip?: boolean | undefined;
  /** The signed manifest this release was read from; only a fetcher that verified one sets it. */
  readonly manifest?: ManifestBinding | undefined;
  /** Where the release comes from, for events and errors (a URL, a path, s3://bucket/key). */
  readonly source: string;
  /** Opens the published bytes. Called at most once per poll, only when the master wants them. */
  open(signal: AbortSignal): Promise<Readable | AsyncIterable<Uint8Array>>;
}

export type FetchResult = { readonly type: 'none' } | { readonly type: 'update'; readonly release: Release };

export interface Fetcher {
  /** Short name for events and logs, such as 'http' or 'github'. */
  readonly name: string;
  /** How often the master polls, in ms. The master never polls faster than minFetchInterval. */
  readonly interval: number;
  /**
   * Spread of the polls, a fraction of the interval (0.2: each wait is the interval ± 20 %, and
   * the first poll comes within 20 % of the interval after start), so a fleet restarted at once
   * does not poll in lockstep. @default 0 (poll at once, then every interval exactly)
   */
  readonly jitter?: number;
  /** Says what the source holds now. Throw (ideally an OverseerError) on failure. */
  fetch(context: FetchContext): Promise<FetchResult>;
  /** Releases clients and watchers; the master calls it when it stops. */
  close?(): void | Promise<void>;
  /**
   * Optional hint: resolves when the source may have changed (fs.watch for files), so the
   * master can poll early. Never faster than minFetchInterval.
   */
  changed?(signal: AbortSignal): Promise<void>;
}
