/**
 * Slow retrieval, end to end: servers that drip a release one byte at a time (just inside every
 * silence timeout) are cut by the minimum rate or the overall deadline, for every network
 * fetcher and for sidecars; a slow but steady link still delivers. Limits are made small here.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { GitHubFetcher } from '../../fetchers/github.ts';
import { HttpFetcher, type HttpFetcherOptions } from '../../fetchers/http.ts';
import { S3Fetcher } from '../../fetchers/s3.ts';
import { isOverseerError } from '../../src/errors.ts';
import type { Release } from '../../src/upgrade/fetcher.ts';
import { startGitHubApi } from '../../support/github-api.ts';
import { startReleaseServer, type ReleaseServer } from '../../support/release-server.ts';
import { context, readAll, releaseOf } from '../helpers/fetch.ts';

/** Small limits so a drip is cut in well under a second; the silence timeout is never reached. */
const FAST = { timeout: 30_000, minDownloadRate: 1000, downloadRateWindow: 300 } as const;

let server: ReleaseServer;
const closers: Array<() => unknown> = [];

before(async () => {
  server = await startReleaseServer();
});
after(async () => {
  await server.close();
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

function http(options: HttpFetcherOptions): HttpFetcher {
  const created = new HttpFetcher(options);
  closers.push(() => created.close());
  return created;
}

/** Reads the release; it must fail with ERR_OVERSEER_DOWNLOAD_FAILED matching `pattern` within `within` ms. */
async function cutWithin(release: Release, pattern: RegExp, within: number): Promise<string> {
  const started = performance.now();
  let message = '';
  await assert.rejects(readAll(await release.open(new AbortController().signal)), (error: unknown) => {
    assert.ok(isOverseerError(error, 'ERR_OVERSEER_DOWNLOAD_FAILED'), `expected ERR_OVERSEER_DOWNLOAD_FAILED, got ${String(error)}`);
    assert.match(error.message, pattern);
    message = error.message;
    return true;
  });
  const elapsed = performance.now() - started;
  assert.ok(elapsed < within, `cut after ${Math.round(elapsed)} ms, expected under ${within}`);
  return message;
}

describe('HttpFetcher', () => {
  test('a drip (one byte every 20 ms) is cut by minDownloadRate, naming the option', async () => {
    server.publish('/drip/app.mjs', Buffer.alloc(100_000, 7));
    server.drip('/drip/app.mjs', { every: 20 });
    const found = releaseOf(await http({ url: server.url('/drip/app.mjs'), ...FAST }).fetch(context()));
    const message = await cutWithin(found, /too slow: \d+ bytes in the last 300 ms.*HttpFetcher\.minDownloadRate of 1000 bytes\/s/, 5000);
    assert.match(message, /lower HttpFetcher\.minDownloadRate \(0 turns the check off\)/);
  });

  test('a download fast enough for the rate but longer than downloadTimeout is cut, naming the option', async () => {
    server.publish('/long/app.mjs', Buffer.alloc(200_000, 1));
    server.drip('/long/app.mjs', { every: 10, bytes: 100 });
    const found = releaseOf(await http({ url: server.url('/long/app.mjs'), ...FAST, downloadTimeout: 600 }).fetch(context()));
    await cutWithin(found, /did not finish within 600 ms \(\d+ bytes received\); raise HttpFetcher\.downloadTimeout/, 5000);
  });

  test('a slow but steady link still delivers the whole release', async () => {
    const body = Buffer.from(Array.from({ length: 4000 }, (_, index) => index & 0xff));
    server.publish('/steady/app.mjs', body);
    server.drip('/steady/app.mjs', { every: 20, bytes: 100 });
    const found = releaseOf(await http({ url: server.url('/steady/app.mjs'), ...FAST, downloadRateWindow: 200 }).fetch(context()));
    assert.deepEqual(await readAll(await found.open(new AbortController().signal)), body);
  });

  test('a dripping sidecar fails the poll instead of holding it open', async () => {
    server.publish('/signed/app.mjs', 'release');
    server.publish('/signed/app.mjs.minisig', 'x'.repeat(60_000));
    server.drip('/signed/app.mjs.minisig', { every: 20 });
    const started = performance.now();
    await assert.rejects(
      http({ url: server.url('/signed/app.mjs'), signatureUrl: server.url('/signed/app.mjs.minisig'), ...FAST }).fetch(context()),
      (error: unknown) => isOverseerError(error, 'ERR_OVERSEER_DOWNLOAD_FAILED') && /app\.mjs\.minisig is too slow/.test(error.message),
    );
    assert.ok(performance.now() - started < 5000);
  });

  test('the limits are options with defaults, checked like the others', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ minDownloadRate: -1 }, /HttpFetcher\.minDownloadRate must be a rate in bytes per second/],
      [{ downloadTimeout: 0 }, /HttpFetcher\.downloadTimeout must be a timeout in milliseconds/],
      [{ downloadRateWindow: '1m' }, /HttpFetcher\.downloadRateWindow must be a timeout/],
    ];
    for (const [options, pattern] of bad) {
      assert.throws(
        () => new HttpFetcher({ url: server.url('/a'), ...options } as HttpFetcherOptions),
        (error: unknown) => isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG') && pattern.test(error.message),
      );
    }
    new HttpFetcher({ url: server.url('/a'), minDownloadRate: 0, downloadTimeout: 1, downloadRateWindow: 1 });
  });
});

test('GitHubFetcher: a dripping asset host is cut by minDownloadRate', async () => {
  const api = await startGitHubApi();
  closers.push(() => api.close());
  api.publishRelease({ tag: 'v1.0.0', assets: [{ name: 'app.mjs', body: Buffer.alloc(10_000, 2) }] });
  api.setDownloadDrip(20);
  const github = new GitHubFetcher({ owner: api.owner, repo: api.repo, baseUrl: api.baseUrl, asset: 'app.mjs', ...withoutTimeout(FAST) });
  closers.push(() => github.close());
  await cutWithin(releaseOf(await github.fetch(context())), /GitHubFetcher\.minDownloadRate/, 5000);
});

test('S3Fetcher: a dripping endpoint is cut by minDownloadRate', async () => {
  const endpoint = await startDrippingS3();
  closers.push(() => closeServer(endpoint.server));
  const s3 = new S3Fetcher({
    bucket: 'releases',
    key: 'app.mjs',
    endpoint: endpoint.url,
    forcePathStyle: true,
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    ...withoutTimeout(FAST),
  });
  closers.push(() => s3.close());
  const found = releaseOf(await s3.fetch(context()));
  assert.equal(found.signature, undefined, 'a missing sidecar is none');
  await cutWithin(found, /s3:\/\/releases\/app\.mjs is too slow.*S3Fetcher\.minDownloadRate/, 5000);
});

function withoutTimeout({ timeout: _timeout, ...rest }: typeof FAST) {
  return rest;
}

/** Enough of S3 for one object: HEAD answers, sidecars are missing (404), GET drips a byte every 20 ms. */
async function startDrippingS3(): Promise<{ url: string; server: Server }> {
  const size = 10_000;
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    if (path !== '/releases/app.mjs') {
      response.writeHead(404, { 'content-type': 'application/xml' });
      return void response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>none</Message></Error>');
    }
    response.writeHead(200, { 'content-length': size, etag: '"e1"', 'content-type': 'application/octet-stream' });
    if (request.method === 'HEAD') return void response.end();
    response.flushHeaders();
    let sent = 0;
    const timer = setInterval(() => {
      if (sent >= size) return void response.end();
      response.write(Buffer.alloc(1));
      sent += 1;
    }, 20);
    response.once('close', () => clearInterval(timer));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}
