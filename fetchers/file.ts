/**
 * FileFetcher: polls a local release file's stat (mtime, size, inode) and offers it only once it
 * has stopped changing, so a file still being copied in is never taken. fs.watch on the file's
 * directory is a hint that lets the master poll early.
 */
import { watch, type FSWatcher, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { describeError, OverseerError } from '../src/errors.js';
import type { FetchContext, Fetcher, FetchResult } from '../src/upgrade/fetcher.js';
import { assertOptions, required, rules, type OptionSpec } from '../src/options.js';
import { readLocalSidecars } from './sidecars.js';

export interface FileFetcherOptions {
  /** The release file; relative paths resolve against the working directory at construction. A name ending in `.gz` marks a gzip release. */
  readonly path: string;
  /** How often the master polls, in ms. @default 1000 */
  readonly interval?: number;
}

const SPEC: OptionSpec = {
  path: required(rules.nonEmptyString),
  interval: rules.interval,
};

const DEFAULT_INTERVAL = 1000;
/** A file whose stat changes within this window is still being written. */
const QUIET_PERIOD = 250;
const NONE: FetchResult = Object.freeze({ type: 'none' });

export class FileFetcher implements Fetcher {
  /** The options the constructor checks, for callers that name them their own way (`overseer run`'s file and flags). */
  static readonly options: OptionSpec = SPEC;
  readonly name = 'file';
  readonly interval: number;
  readonly #path: string;
  /** The stat the previous poll ended with, and when (performance.now()), to skip the wait for a file that has not moved since. */
  #lastSeen: { readonly id: string; readonly at: number } | undefined;

  constructor(options: FileFetcherOptions) {
    assertOptions('FileFetcher', options, SPEC);
    this.interval = options.interval ?? DEFAULT_INTERVAL;
    this.#path = path.resolve(options.path);
  }

  /**
   * 'none' while the file is missing, empty or still changing; otherwise an update named
   * `${mtimeMs}:${size}:${ino}`. Unless the previous poll, at least 250 ms ago, saw the same
   * stat, the file is stat'ed again after 250 ms and taken only if nothing moved.
   */
  async fetch({ signal, wants }: FetchContext): Promise<FetchResult> {
    signal.throwIfAborted();
    const first = await this.#stat();
    if (first === undefined) {
      this.#lastSeen = undefined;
      return NONE;
    }
    const id = statId(first);
    const seen = this.#lastSeen;
    if (seen === undefined || seen.id !== id || performance.now() - seen.at < QUIET_PERIOD) {
      try {
        await delay(QUIET_PERIOD, undefined, { signal });
      } catch (error) {
        signal.throwIfAborted();
        throw error;
      }
      const second = await this.#stat();
      const secondId = second === undefined ? undefined : statId(second);
      this.#lastSeen = secondId === undefined ? undefined : { id: secondId, at: performance.now() };
      if (secondId !== id) return NONE;
    }
    if (first.size === 0) return NONE;
    const { size } = first;
    // `<path>.minisig` and `<path>.sha256`, as docs/signing.md says, when verification needs them.
    const { sha256, signature } = await readLocalSidecars(this.#path, wants);
    return {
      type: 'update',
      release: {
        id,
        size,
        sha256,
        signature,
        gzip: this.#path.endsWith('.gz'),
        source: this.#path,
        open: (openSignal) => this.#open(openSignal, id, size),
      },
    };
  }

  /**
   * Resolves when the file's directory reports an event for the file, or when `signal`
   * aborts; never rejects. Where fs.watch fails (no directory yet, no inotify) it waits for
   * the abort and the interval does the work.
   */
  changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) {
        resolve();
        return;
      }
      let watcher: FSWatcher | undefined;
      const finish = (): void => {
        watcher?.close();
        signal.removeEventListener('abort', finish);
        resolve();
      };
      signal.addEventListener('abort', finish, { once: true });
      const base = path.basename(this.#path);
      try {
        watcher = watch(path.dirname(this.#path), { persistent: false }, (_event, filename) => {
          if (filename === null || filename === base) finish();
        });
        watcher.on('error', () => {
          watcher?.close();
          watcher = undefined;
        });
      } catch {
        watcher = undefined;
      }
    });
  }

  /** Opens the file and reads exactly the polled bytes; fails if it was replaced or rewritten since the poll. */
  async #open(signal: AbortSignal, id: string, size: number): Promise<Readable> {
    signal.throwIfAborted();
    let handle;
    try {
      handle = await open(this.#path, 'r');
    } catch (error) {
      throw this.#failure('could not be opened', error);
    }
    try {
      const now = await handle.stat();
      if (statId(now) !== id) {
        throw new OverseerError(
          'ERR_OVERSEER_FETCH_FAILED',
          `${this.#path} changed between the poll and the download; the next poll looks again`,
          { subject: this.#path },
        );
      }
    } catch (error) {
      await handle.close();
      throw error instanceof OverseerError ? error : this.#failure('could not be read', error);
    }
    const stream = handle.createReadStream({ start: 0, end: size - 1 });
    const onAbort = (): void => {
      stream.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
    return stream;
  }

  async #stat(): Promise<Stats | undefined> {
    let stats: Stats;
    try {
      stats = await stat(this.#path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw this.#failure('could not be read', error);
    }
    if (!stats.isFile()) {
      throw new OverseerError('ERR_OVERSEER_FETCH_FAILED', `${this.#path} is not a regular file; FileFetcher.path must name the release file`, {
        subject: this.#path,
      });
    }
    return stats;
  }

  #failure(what: string, error: unknown): OverseerError {
    return new OverseerError('ERR_OVERSEER_FETCH_FAILED', `${this.#path} ${what}: ${describeError(error)}`, {
      cause: error,
      subject: this.#path,
    });
  }
}

function statId(stats: Stats): string {
  return `${stats.mtimeMs}:${stats.size}:${stats.ino}`;
}
