/** Small helpers for fetcher tests: a poll context, the release of an update, a body read whole. */
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { afterEach } from 'node:test';
import { HttpFetcher, type HttpFetcherOptions } from '../../fetchers/http.ts';
import type { FetchContext, FetchResult, Release } from '../../src/upgrade/fetcher.ts';

export const context = (signal: AbortSignal = new AbortController().signal): FetchContext => ({
  signal,
  currentSha256: '0'.repeat(64),
  currentVersion: undefined,
});

export function releaseOf(result: FetchResult): Release {
  assert.equal(result.type, 'update');
  return (result as Extract<FetchResult, { type: 'update' }>).release;
}

export async function readAll(stream: Readable | AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Aborting open()'s signal mid-download must end the stream with exactly that reason. */
export async function assertAbortEndsStream(release: Release, size: number): Promise<void> {
  const controller = new AbortController();
  const stream = await release.open(controller.signal);
  const reason = new Error('the master stops');
  let received = 0;
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) {
        received += (chunk as Buffer).length;
        controller.abort(reason);
      }
    })(),
    (error) => error === reason,
  );
  assert.ok(received < size, `read ${received} of ${size} bytes after the abort`);
}

/** A maker of HttpFetchers that closes each one after the test that made it. */
export function httpFetchers(): (options: HttpFetcherOptions) => HttpFetcher {
  const made: HttpFetcher[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((fetcher) => fetcher.close()));
  });
  return (options) => {
    const fetcher = new HttpFetcher(options);
    made.push(fetcher);
    return fetcher;
  };
}
