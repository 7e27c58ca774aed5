/**
 * A release body written straight from its 'data' events to an open file: each chunk is seen
 * once (counted, hashed, checked by `onChunk`) and gathered, and one writev goes out per
 * `gather` bytes. This replaces a Transform + WriteStream pipeline: no stream machinery,
 * callback or promise per chunk between the socket and the file, and 8× fewer write calls
 * (a WriteStream writes each chunk as it comes while its writer keeps up). Writes run on the
 * libuv pool, beside the master's thread, which reads the socket and hashes meanwhile.
 */
import { writev } from 'node:fs';
import { finished, type Readable } from 'node:stream';

/** The error of a write to the file (not of the body): the caller words it as its own. */
export class BodyWriteError extends Error {
  override readonly cause: NodeJS.ErrnoException;
  constructor(cause: NodeJS.ErrnoException) {
    super(cause.message);
    this.cause = cause;
  }
}

export interface WriteBodyOptions {
  /** Bytes gathered per write; at most about twice this is held (one write out, one gathering). */
  readonly gather: number;
  /** Sees each chunk before it is written; a throw fails the write with that error. */
  readonly onChunk: (chunk: Buffer) => void;
  /** Called as the body pauses because a batch is full and the last write is still out: the thread has time. A throw fails the write. */
  readonly onWait?: () => void;
  readonly signal?: AbortSignal;
}

/**
 * Writes `body` to `fd` from its current position. Resolves once the body ended and every byte
 * is written; rejects with the body's error, `onChunk`'s, the signal's reason or a
 * BodyWriteError, and only once no write is under way (the caller may then close the fd).
 * The body is destroyed on failure.
 */
export function writeBody(body: Readable, fd: number, { gather, onChunk, onWait, signal }: WriteBodyOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let writing = false;
    let ended = false;
    let failure: { error: unknown } | undefined;

    const settle = (): void => {
      if (writing) return;
      cleanup();
      if (failure) reject(failure.error);
      else resolve();
    };
    const fail = (error: unknown): void => {
      if (failure) return;
      failure = { error };
      pending = [];
      body.destroy();
      settle();
    };
    const write = (chunks: Buffer[]): void => {
      writing = true;
      writev(fd, chunks, (error, written) => {
        writing = false;
        if (failure) return settle();
        if (error) return fail(new BodyWriteError(error));
        // A short write (a signal, a nearly full disk): the rest goes again, as WriteStream does.
        const rest = unwritten(chunks, written);
        if (rest.length > 0) {
          if (written === 0) return fail(new BodyWriteError(Object.assign(new Error('writev wrote nothing'), { code: 'EIO', syscall: 'writev' })));
          return write(rest);
        }
        if (pendingBytes >= gather || (ended && pending.length > 0)) return flush();
        if (ended) return settle();
        body.resume();
      });
    };
    const flush = (): void => {
      const chunks = pending;
      pending = [];
      pendingBytes = 0;
      write(chunks);
    };
    const onData = (chunk: Buffer | string): void => {
      if (failure) return;
      const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      try {
        onChunk(data);
      } catch (error) {
        return fail(error);
      }
      // onChunk may have aborted the signal (a progress listener stopping the master).
      if (failure) return;
      pending.push(data);
      pendingBytes += data.length;
      if (pendingBytes < gather) return;
      if (!writing) return flush();
      body.pause();
      try {
        onWait?.();
      } catch (error) {
        fail(error);
      }
    };
    const onAbort = (): void => fail(signal?.reason);
    const stopWatching = finished(body, { writable: false }, (error) => {
      if (error) return fail(error);
      ended = true;
      if (writing) return;
      if (pending.length > 0) flush();
      else settle();
    });
    const cleanup = (): void => {
      body.off('data', onData);
      signal?.removeEventListener('abort', onAbort);
      stopWatching();
      // The body's teardown may still report an error nobody reads any more.
      body.on('error', () => undefined);
    };

    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    body.on('data', onData);
  });
}

/** What a writev of `chunks` left unwritten after `written` bytes. */
export function unwritten(chunks: readonly Buffer[], written: number): Buffer[] {
  let skip = written;
  let index = 0;
  while (index < chunks.length && skip >= chunks[index]!.length) skip -= chunks[index++]!.length;
  if (index === chunks.length) return [];
  return [chunks[index]!.subarray(skip), ...chunks.slice(index + 1)];
}
