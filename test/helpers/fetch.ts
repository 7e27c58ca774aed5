/** Small helpers for fetcher tests: a poll context, the release of an update, a body read whole. */
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import type { FetchContext, FetchResult, Release } from '../../src/fetcher.ts';

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
