/**
 * The bundle on disk: stage a release into a temp file beside the real target while hashing it,
 * swap it in with one rename under the bundle lock (the old one kept as `.previous`), roll back.
 * A SIGKILL at any instant leaves the target complete, old or new; leftovers are stale temps.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, realpath, rename, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { OverseerError, isOverseerError } from '../errors.js';
import { withBundleLock } from './lock.js';
import { BodyWriteError, writeBody } from './write-body.js';
import { copyToTemp, createTempPath, linkOrCopyToTemp, syncDirectory, syncFile, unlinkIfExists } from './temps.js';

export interface StageOptions {
  /** The bundle the master runs; a symlink is followed and its target is what gets replaced. */
  readonly bundlePath: string;
  /** The published bytes, as a fetcher's `Release.open()` gives them. */
  readonly body: Readable | AsyncIterable<Uint8Array>;
  /** Inflate the published bytes; hashes of the raw bytes stay over what was published. */
  readonly gzip?: boolean;
  /** Cap on the written (inflated) bytes: the `maxBundleSize` option. */
  readonly maxBytes: number;
  readonly signal?: AbortSignal;
  /** Called per chunk with the published bytes received so far and `expectedSize`. */
  readonly onProgress?: (received: number, total: number | undefined) => void;
  /** Called when a plain release's body waits for its last write (write-body.ts), with the bytes received so far. */
  readonly onWait?: (received: number) => void;
  /** Published size the source announced; any other count fails the download. */
  readonly expectedSize?: number;
  /**
   * Also compute the BLAKE2b-512 of the published bytes (the minisign prehash). Only a master
   * with `verify.publicKey` needs it: it is a second full hash of every byte. @default true
   */
  readonly prehash?: boolean;
}

export interface StagedRelease {
  /** The temp file beside the target, with the target's extension and mode bits. */
  readonly tempPath: string;
  /** sha256 (hex) of the written content: the bundle's id once swapped in. */
  readonly sha256: string;
  /** sha256 (hex) of the bytes as published, for the source's checksum. */
  readonly rawSha256: string;
  /** BLAKE2b-512 of the bytes as published, the minisign prehash; undefined when `prehash` was false. */
  readonly rawBlake2b512: Buffer | undefined;
  /** Bytes written (inflated). */
  readonly bytes: number;
  /** Bytes as published. */
  readonly rawBytes: number;
  /** The real path the swap replaces (symlinks resolved). */
  readonly targetPath: string;
}

/** Points of a swap a SIGKILL can land between; `onStep` sees each one, in this order. */
export type SwapStep = 'locked' | 'previous-written' | 'previous-renamed' | 'renamed' | 'synced';

export interface SwapOptions {
  /** Bundle lock staleness in ms (see withBundleLock). @default 10000 */
  readonly lockStale?: number;
  /** Lock attempts after the first while another process holds it (see withBundleLock). @default 10 */
  readonly lockRetries?: number;
  /** Observes each step while the lock is held (debug logs, tests). */
  readonly onStep?: (step: SwapStep) => void | Promise<void>;
}

export interface SwapResult {
  readonly targetPath: string;
  /** The replaced bundle, `<target>.previous`, with its mode bits. */
  readonly previousPath: string;
}

const previousSuffix = '.previous';
/**
 * Writes to the staged file gather this much: one writev per 256 KiB (write-body.ts), where a
 * WriteStream wrote each 64 KiB chunk as it came. Measured on 1 GiB (bench/download-threads.ts,
 * docs/benchmarks.md §9): 512 KiB cost the same CPU and ~1.4 MB more peak RSS (one batch out
 * and one gathering are held until written).
 */
const WRITE_GATHER_BYTES = 256 * 1024;
const FILE_SYSCALLS = new Set(['open', 'write', 'writev', 'close', 'fsync', 'fdatasync']);

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function stageFailed(tempPath: string, error: unknown): OverseerError {
  return new OverseerError(
    'ERR_OVERSEER_SWAP_FAILED',
    `cannot write the staged release ${tempPath}: ${errorText(error)}; the bundle's directory must be writable by the master and have room for a second copy`,
    { subject: tempPath, cause: error },
  );
}

function tooLarge(maxBytes: number, gzip: boolean, announced?: number): OverseerError {
  const what = announced !== undefined ? ` (its source announced ${announced})` : gzip ? ' once inflated' : '';
  return new OverseerError(
    'ERR_OVERSEER_TOO_LARGE',
    `the release is larger than ${maxBytes} bytes${what}; raise the \`maxBundleSize\` option if it is genuine`,
    { subject: String(maxBytes) },
  );
}

/** Counts and hashes bytes, throwing as soon as `limit` is passed. */
class Tally {
  bytes = 0;
  readonly #hashes: ReturnType<typeof createHash>[];
  readonly #limit: number;
  readonly #onLimit: () => Error;
  readonly #onChunk: ((bytes: number) => void) | undefined;

  constructor(algorithms: readonly string[], limit: number, onLimit: () => Error, onChunk?: (bytes: number) => void) {
    this.#hashes = algorithms.map((algorithm) => createHash(algorithm));
    this.#limit = limit;
    this.#onLimit = onLimit;
    this.#onChunk = onChunk;
  }

  add(data: Uint8Array): void {
    this.bytes += data.byteLength;
    if (this.bytes > this.#limit) throw this.#onLimit();
    for (const hash of this.#hashes) hash.update(data);
    this.#onChunk?.(this.bytes);
  }

  digests(): Buffer[] {
    return this.#hashes.map((hash) => hash.digest());
  }
}

/** A Tally as a stream stage, for the gzip chain (raw bytes, then inflated ones). */
class Meter extends Transform {
  constructor(readonly tally: Tally) {
    super();
  }

  override _transform(chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
    try {
      this.tally.add(data);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback(null, data);
  }
}

/** A plain release: the body's chunks tallied and written as they come (write-body.ts). */
async function plainToFile(
  tempPath: string,
  body: StageOptions['body'],
  raw: Tally,
  signal: AbortSignal | undefined,
  onWait: (() => void) | undefined,
): Promise<void> {
  const source = body instanceof Readable ? body : Readable.from(body, { objectMode: false });
  let file: FileHandle;
  try {
    file = await open(tempPath, 'r+');
  } catch (error) {
    source.destroy();
    throw new BodyWriteError(error as NodeJS.ErrnoException);
  }
  try {
    await writeBody(source, file.fd, {
      gather: WRITE_GATHER_BYTES,
      onChunk: (chunk) => raw.add(chunk),
      ...(onWait === undefined ? {} : { onWait }),
      ...(signal === undefined ? {} : { signal }),
    });
  } finally {
    await file.close();
  }
}

/** A gzip release: raw bytes tallied, inflated, the inflated bytes tallied and written. */
async function inflateToFile(
  tempPath: string,
  body: StageOptions['body'],
  raw: Tally,
  inflated: Tally,
  signal: AbortSignal | undefined,
  onWriteError: (error: unknown) => void,
): Promise<void> {
  const file = createWriteStream(tempPath, { flags: 'r+', highWaterMark: WRITE_GATHER_BYTES });
  // Since Node 22 the pipeline destroys the file stream with an upstream error too, so only
  // errors of the file's own system calls count as write failures.
  file.on('error', (error: NodeJS.ErrnoException) => {
    if (error.syscall !== undefined && FILE_SYSCALLS.has(error.syscall)) onWriteError(error);
  });
  await pipeline(body, new Meter(raw), createGunzip(), new Meter(inflated), file, signal === undefined ? {} : { signal });
}

/**
 * Streams a release into a temp file beside the real bundle, hashing it in constant memory.
 * Rejects with ERR_OVERSEER_TOO_LARGE past `maxBytes` written, ERR_OVERSEER_DOWNLOAD_FAILED
 * when the body breaks off, is aborted, is shorter or longer than `expectedSize`, is not gzip
 * or is empty, ERR_OVERSEER_SWAP_FAILED when the file cannot be written. The temp file is
 * removed on every failure; on success it is fsynced and left for verification.
 */
export async function stageRelease(options: StageOptions): Promise<StagedRelease> {
  const { bundlePath, body, gzip = false, maxBytes, signal, onProgress, onWait, expectedSize, prehash = true } = options;
  const downloadFailed = (what: string, cause?: unknown) =>
    new OverseerError('ERR_OVERSEER_DOWNLOAD_FAILED', `the release download for ${bundlePath} ${what}`, {
      subject: bundlePath,
      ...(cause === undefined ? {} : { cause }),
    });
  if (signal?.aborted) throw downloadFailed('was aborted', signal.reason);
  let targetPath: string;
  let mode: number;
  try {
    targetPath = await realpath(bundlePath);
    mode = (await stat(targetPath)).mode & 0o7777;
  } catch (error) {
    throw new OverseerError(
      'ERR_OVERSEER_SWAP_FAILED',
      `cannot read the bundle ${bundlePath}: ${errorText(error)}; set \`bundlePath\` to the file the master runs`,
      { subject: bundlePath, cause: error },
    );
  }

  // Deflate adds about 5 bytes per 64 KiB plus headers: the raw cap only stops endless padding.
  const rawLimit = gzip ? maxBytes + Math.ceil(maxBytes / 1024) + 1024 : maxBytes;
  if (expectedSize !== undefined && expectedSize > rawLimit) throw tooLarge(maxBytes, gzip, expectedSize);

  const tempPath = createTempPath(targetPath);
  try {
    // Created apart from the stream so a failure never unlinks a file that was not ours.
    await (await open(tempPath, 'wx', mode)).close();
  } catch (error) {
    throw stageFailed(tempPath, error);
  }

  let writeError: unknown;
  try {
    // Each byte is hashed once per digest needed: a plain release's content is its raw bytes,
    // so their sha256 is both; only gzip needs a second sha256, of the inflated content.
    const raw = new Tally(
      prehash ? ['sha256', 'blake2b512'] : ['sha256'],
      expectedSize ?? rawLimit,
      () =>
        expectedSize !== undefined
          ? downloadFailed(`sent more than the ${expectedSize} bytes announced`)
          : tooLarge(maxBytes, gzip),
      onProgress && ((received) => onProgress(received, expectedSize)),
    );
    const inflated = gzip ? new Tally(['sha256'], maxBytes, () => tooLarge(maxBytes, gzip)) : undefined;
    try {
      if (inflated) await inflateToFile(tempPath, body, raw, inflated, signal, (error) => (writeError = error));
      else await plainToFile(tempPath, body, raw, signal, onWait && (() => onWait(raw.bytes)));
    } catch (error) {
      if (isOverseerError(error)) throw error;
      if (signal?.aborted) throw downloadFailed('was aborted', signal.reason);
      if (error instanceof BodyWriteError) throw stageFailed(tempPath, error.cause);
      if (writeError !== undefined && error === writeError) throw stageFailed(tempPath, error);
      const code = (error as NodeJS.ErrnoException).code;
      if (gzip && typeof code === 'string' && code.startsWith('Z_')) {
        throw downloadFailed(`is not valid gzip (${errorText(error)}); publish it uncompressed or fix the .gz`, error);
      }
      throw downloadFailed(`broke off: ${errorText(error)}`, error);
    }
    if (expectedSize !== undefined && raw.bytes !== expectedSize) {
      throw downloadFailed(`ended after ${raw.bytes} of the ${expectedSize} bytes announced`);
    }
    const content = inflated ?? raw;
    if (content.bytes === 0) throw downloadFailed('is empty');
    try {
      await syncFile(tempPath, mode);
    } catch (error) {
      throw stageFailed(tempPath, error);
    }
    const [rawSha256, rawBlake2b512] = raw.digests() as [Buffer, Buffer | undefined];
    const [sha256] = inflated ? (inflated.digests() as [Buffer]) : [rawSha256];
    return {
      tempPath,
      sha256: sha256.toString('hex'),
      rawSha256: rawSha256.toString('hex'),
      rawBlake2b512,
      bytes: content.bytes,
      rawBytes: raw.bytes,
      targetPath,
    };
  } catch (error) {
    await unlinkIfExists(tempPath).catch(() => {});
    throw error;
  }
}

/** Removes a staged release that will not be swapped in (verification failed, cancelled). */
export async function discardStaged(staged: Pick<StagedRelease, 'tempPath'>): Promise<void> {
  await unlinkIfExists(staged.tempPath);
}

export { cleanupStaleTemps } from './temps.js';

function assertLockHeld(signal: AbortSignal, lockPath: string): void {
  if (!signal.aborted) return;
  throw new OverseerError(
    'ERR_OVERSEER_LOCKED',
    `the bundle lock ${lockPath} was lost before the swap (the event loop stalled past lockStale, or the lock was removed); nothing was replaced`,
    { subject: lockPath, cause: signal.reason },
  );
}

/**
 * Under the bundle lock: hard-links the target as `<target>.previous` (a copy, fsynced, where the
 * file system refuses links; made as a temp and renamed over any older one), renames the staged file over the target, fsyncs the
 * directory. Every replacement is a rename within one directory, so the target is always a
 * complete file. Rejects with ERR_OVERSEER_LOCKED or ERR_OVERSEER_SWAP_FAILED, the target
 * untouched; the staged file is then left for the caller to discard or retry.
 */
export async function swapBundle(staged: Pick<StagedRelease, 'tempPath' | 'targetPath'>, options: SwapOptions = {}): Promise<SwapResult> {
  const { targetPath, tempPath } = staged;
  const previousPath = targetPath + previousSuffix;
  const onStep = options.onStep ?? (() => {});
  return withBundleLock(
    targetPath,
    async (lost) => {
      await onStep('locked');
      let previousTemp: string | undefined;
      try {
        // Checked first so a vanished staged file does not cost the older `.previous`.
        await stat(tempPath);
        // A hard link, not a copy: the rename below gives the target a new inode, so the link
        // is left the only name of the old bytes (a copy where links are refused).
        previousTemp = (await linkOrCopyToTemp(targetPath, targetPath)).tempPath;
        await onStep('previous-written');
        assertLockHeld(lost, `${targetPath}.lock`);
        await rename(previousTemp, previousPath);
        // rename() between two links of one inode does nothing (a swap killed after this step
        // left `.previous` linked to the target): the temp name is then still there.
        await unlinkIfExists(previousTemp);
        previousTemp = undefined;
        await onStep('previous-renamed');
        assertLockHeld(lost, `${targetPath}.lock`);
        await rename(tempPath, targetPath);
      } catch (error) {
        if (previousTemp !== undefined) await unlinkIfExists(previousTemp).catch(() => {});
        if (isOverseerError(error)) throw error;
        throw new OverseerError(
          'ERR_OVERSEER_SWAP_FAILED',
          `cannot move ${tempPath} over ${targetPath}: ${errorText(error)}; the bundle was not changed`,
          { subject: targetPath, cause: error },
        );
      }
      await onStep('renamed');
      await syncDirectory(path.dirname(targetPath));
      await onStep('synced');
      return { targetPath, previousPath };
    },
    lockOptions(options),
  );
}

function lockOptions(options: SwapOptions): { stale?: number; retries?: number } {
  return {
    ...(options.lockStale === undefined ? {} : { stale: options.lockStale }),
    ...(options.lockRetries === undefined ? {} : { retries: options.lockRetries }),
  };
}

/**
 * Rollback: under the bundle lock, puts a copy of `<target>.previous` over the target with one
 * rename; `.previous` stays. `bundlePath` is best the real path StagedRelease and SwapResult
 * give; a symlink is followed. Rejects with ERR_OVERSEER_SWAP_FAILED when there is no `.previous`.
 */
export async function restorePrevious(bundlePath: string, options: Omit<SwapOptions, 'onStep'> = {}): Promise<void> {
  const targetPath = await realpath(bundlePath).catch(() => path.resolve(bundlePath));
  const previousPath = targetPath + previousSuffix;
  await withBundleLock(
    targetPath,
    async (lost) => {
      let restoreTemp: string | undefined;
      try {
        restoreTemp = await copyToTemp(previousPath, targetPath);
        assertLockHeld(lost, `${targetPath}.lock`);
        await rename(restoreTemp, targetPath);
        restoreTemp = undefined;
      } catch (error) {
        if (restoreTemp !== undefined) await unlinkIfExists(restoreTemp).catch(() => {});
        if (isOverseerError(error)) throw error;
        const missing = (error as NodeJS.ErrnoException).code === 'ENOENT' && (error as NodeJS.ErrnoException).path === previousPath;
        throw new OverseerError(
          'ERR_OVERSEER_SWAP_FAILED',
          missing
            ? `there is no previous bundle ${previousPath} to restore; ${targetPath} was not changed`
            : `cannot restore ${previousPath} over ${targetPath}: ${errorText(error)}`,
          { subject: previousPath, cause: error },
        );
      }
      await syncDirectory(path.dirname(targetPath));
    },
    lockOptions(options),
  );
}
