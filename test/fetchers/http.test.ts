/**
 * HttpFetcher against a real release server on loopback: naming releases by ETag or
 * Last-Modified, HEAD fallback, sidecars, errors and timeouts, broken bodies, proxies, and
 * that importing the fetchers does not load undici.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { after, afterEach, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HttpFetcher, type HttpFetcherOptions } from '../../fetchers/http.ts';
import { isOverseerError, type ErrorCode } from '../../src/errors.ts';
import type { FetchContext, FetchResult, Release } from '../../src/upgrade/fetcher.ts';
import { startReleaseServer, type ReleaseServer } from '../../support/release-server.ts';
import { httpFetchers } from '../helpers/fetch.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SIGNATURE =
  'untrusted comment: signature from minisign secret key\n' +
  'RUQAAAAAAAAAAPbUGgkq0QJb5Tc5rVF+HtUZjAKJ8n1Q3f0+NH5F7T0uV9yVb2J7Iw6ZQKk6NQ1Cq5bX8w0Q8gS0n6m6q3A9K1Y=\n' +
  'trusted comment: timestamp:1700000000\thashed\n' +
  'Jw9b6mC3hY1sQ2w5eR7tY9uI0oP1aS2dF3gH4jK5lZ6xC7vB8nM9qW0eR1tY2uI3oP4aS5dF6gH7jK8lZ9xC0v==\n';

let server: ReleaseServer;
const fetcher = httpFetchers();

before(async () => {
  server = await startReleaseServer();
});
after(async () => {
  await server.close();
});


function context(signal: AbortSignal = new AbortController().signal): FetchContext {
  return { signal, currentSha256: '0'.repeat(64), currentVersion: undefined };
}

function release(result: FetchResult): Release {
  assert.equal(result.type, 'update');
  return result.release;
}

async function read(body: Readable | AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function requestsTo(path: string): string[] {
  return server.requests.filter((request) => request.path === path).map((request) => request.method);
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, pattern: RegExp): Promise<Error> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(isOverseerError(caught, code), `expected ${code}, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  return caught;
}

describe('naming releases', () => {
  test('ETag names the release; polling sends HEAD only; a new publish changes the id', async () => {
    const first = server.publish('/etag/app.mjs', 'console.log("v1")\n');
    const http = fetcher({ url: first.url });
    const one = release(await http.fetch(context()));
    assert.equal(one.id, first.etag);
    assert.equal(one.size, first.size);
    assert.equal(one.gzip, false);
    assert.equal(one.source, first.url);
    assert.equal(release(await http.fetch(context())).id, first.etag);
    assert.deepEqual(requestsTo('/etag/app.mjs'), ['HEAD', 'HEAD']);
    assert.equal((await read(await one.open(new AbortController().signal))).toString(), 'console.log("v1")\n');
    assert.deepEqual(requestsTo('/etag/app.mjs'), ['HEAD', 'HEAD', 'GET']);
    const second = server.publish('/etag/app.mjs', 'console.log("v2")\n');
    const two = release(await http.fetch(context()));
    assert.equal(two.id, second.etag);
    assert.notEqual(two.id, one.id);
  });

  test('without an ETag, Last-Modified and Content-Length name the release', async () => {
    // Old enough to trust (a Last-Modified as recent as the response's Date gives no id: http-racy.test.ts).
    const first = server.publish('/lm/app.mjs', 'v1', { etag: false, lastModified: new Date(Date.now() - 60_000) });
    const http = fetcher({ url: first.url });
    const one = release(await http.fetch(context()));
    assert.ok(one.id?.includes(first.lastModified ?? 'missing'), `${one.id} names ${first.lastModified}`);
    assert.ok(one.id?.includes('2'), 'and the length');
    server.publish('/lm/app.mjs', 'v2', { etag: false, lastModified: new Date(Date.now() - 30_000) });
    const two = release(await http.fetch(context()));
    assert.notEqual(two.id, one.id);
    assert.equal((await read(await two.open(new AbortController().signal))).toString(), 'v2');
  });

  test('with neither header the id is undefined and open() still downloads', async () => {
    const published = server.publish('/bare/app.mjs', 'plain bytes');
    server.setMode('/bare/app.mjs', 'no-headers');
    const found = release(await fetcher({ url: published.url }).fetch(context()));
    assert.equal(found.id, undefined);
    assert.equal(found.size, published.size);
    assert.equal((await read(await found.open(new AbortController().signal))).toString(), 'plain bytes');
  });

  test('a server that refuses HEAD (405) is polled with GET from then on', async () => {
    const published = server.publish('/nohead/app.mjs', 'get only');
    server.setMode('/nohead/app.mjs', 'no-head');
    const http = fetcher({ url: published.url });
    const one = release(await http.fetch(context()));
    assert.equal(one.id, undefined);
    assert.equal(one.size, undefined);
    assert.equal((await read(await one.open(new AbortController().signal))).toString(), 'get only');
    release(await http.fetch(context()));
    assert.deepEqual(requestsTo('/nohead/app.mjs'), ['HEAD', 'GET']);
  });

  test('redirects are followed', async () => {
    const published = server.publish('/moved/app-v3.mjs', 'redirected');
    server.redirect('/latest/app.mjs', '/moved/app-v3.mjs');
    const found = release(await fetcher({ url: server.url('/latest/app.mjs') }).fetch(context()));
    assert.equal(found.id, published.etag);
    assert.equal((await read(await found.open(new AbortController().signal))).toString(), 'redirected');
  });
});

describe('requests', () => {
  test('custom headers reach the server on HEAD, GET and sidecars; URL credentials become basic auth', async () => {
    const published = server.publish('/auth/app.mjs', 'secret', { sha256: true, signature: SIGNATURE });
    const http = fetcher({
      url: published.url,
      headers: { Authorization: 'Bearer t0ken', 'X-Team': 'infra' },
      sha256Url: `${published.url}.sha256`,
      signatureUrl: `${published.url}.minisig`,
    });
    const found = release(await http.fetch(context()));
    await read(await found.open(new AbortController().signal));
    const seen = server.requests.filter((request) => request.path.startsWith('/auth/'));
    assert.deepEqual(seen.map((request) => `${request.method} ${request.path}`).sort(), [
      'GET /auth/app.mjs',
      'GET /auth/app.mjs.minisig',
      'GET /auth/app.mjs.sha256',
      'HEAD /auth/app.mjs',
    ]);
    for (const request of seen) {
      assert.equal(request.headers['authorization'], 'Bearer t0ken');
      assert.equal(request.headers['x-team'], 'infra');
      assert.equal(request.headers['accept-encoding'], 'identity');
    }

    const basic = new URL(published.url);
    basic.username = 'deploy';
    basic.password = 'p@ss';
    const withCredentials = release(await fetcher({ url: basic }).fetch(context()));
    assert.equal(withCredentials.source, published.url);
    const last = server.requests.at(-1);
    assert.equal(last?.headers['authorization'], `Basic ${Buffer.from('deploy:p@ss').toString('base64')}`);
  });

  test('gzip: a .gz path, or a gzip Content-Encoding; never for a plain file', async () => {
    const gz = server.publish('/gz/app.mjs.gz', 'compressed', { gzip: true });
    const gzRelease = release(await fetcher({ url: gz.url }).fetch(context()));
    assert.equal(gzRelease.gzip, true);
    const bytes = await read(await gzRelease.open(new AbortController().signal));
    assert.deepEqual(bytes.subarray(0, 2), Buffer.from([0x1f, 0x8b]), 'the bytes stay compressed');
    assert.equal(createHash('sha256').update(bytes).digest('hex'), gz.sha256);

    const encoded = server.publish('/gz/encoded.mjs', 'x', { gzip: true, contentEncoding: 'gzip' });
    assert.equal(release(await fetcher({ url: encoded.url }).fetch(context())).gzip, true);
    const plain = server.publish('/gz/plain.mjs', 'x');
    assert.equal(release(await fetcher({ url: plain.url }).fetch(context())).gzip, false);
  });

  test('a generated 48 MB release streams through open() intact', async () => {
    const big = server.publishGenerated('/big/app.bin', 48 * 1024 * 1024, { seed: 7 });
    const found = release(await fetcher({ url: big.url }).fetch(context()));
    assert.equal(found.size, big.size);
    const hash = createHash('sha256');
    let received = 0;
    for await (const chunk of await found.open(new AbortController().signal)) {
      received += chunk.length;
      hash.update(chunk);
    }
    assert.equal(received, big.size);
    assert.equal(hash.digest('hex'), big.sha256);
  });

  test('close() ends the connections and a later fetch() opens new ones', async () => {
    const published = server.publish('/close/app.mjs', 'x');
    const http = fetcher({ url: published.url });
    release(await http.fetch(context()));
    await http.close();
    release(await http.fetch(context()));
  });
});

describe('sidecars', () => {
  test('sha256Url accepts a bare hash and sha256sum output', async () => {
    const published = server.publish('/sum/app.mjs', 'hash me');
    server.publish('/sum/bare.sha256', `${published.sha256.toUpperCase()}\n`);
    server.publish('/sum/sum.sha256', `${published.sha256}  app.mjs\n`);
    server.publish('/sum/list.sha256', `${'a'.repeat(64)}  other.mjs\n${published.sha256} *dist/app.mjs\n`);
    for (const file of ['bare', 'sum', 'list']) {
      const found = release(await fetcher({ url: published.url, sha256Url: server.url(`/sum/${file}.sha256`) }).fetch(context()));
      assert.equal(found.sha256, published.sha256, file);
    }
  });

  test('a malformed, empty, ambiguous or missing sha256 sidecar fails the fetch', async () => {
    const published = server.publish('/badsum/app.mjs', 'x');
    server.publish('/badsum/short.sha256', 'abc123  app.mjs\n');
    server.publish('/badsum/empty.sha256', '\n');
    server.publish('/badsum/list.sha256', `${'a'.repeat(64)}  one.mjs\n${'b'.repeat(64)}  two.mjs\n`);
    const cases: Array<[string, RegExp]> = [
      ['short', /not "<64 hex digits>"/],
      ['empty', /is empty/],
      ['list', /none named "app\.mjs"/],
      ['missing', /answered 404/],
    ];
    for (const [file, pattern] of cases) {
      const http = fetcher({ url: published.url, sha256Url: server.url(`/badsum/${file}.sha256`) });
      await rejectsWith(http.fetch(context()), 'ERR_OVERSEER_FETCH_FAILED', pattern);
    }
  });

  test('signatureUrl puts the .minisig text in release.signature; sidecars are read once per id', async () => {
    const published = server.publish('/sig/app.mjs', 'signed', { sha256: true, signature: SIGNATURE });
    const http = fetcher({ url: published.url, sha256Url: `${published.url}.sha256`, signatureUrl: `${published.url}.minisig` });
    const found = release(await http.fetch(context()));
    assert.equal(found.signature, SIGNATURE);
    assert.equal(found.sha256, published.sha256);
    release(await http.fetch(context()));
    assert.deepEqual(requestsTo('/sig/app.mjs.minisig'), ['GET']);
    assert.deepEqual(requestsTo('/sig/app.mjs.sha256'), ['GET']);
  });

  test('when the ETag changes between poll and download, sidecars make open() fail; without them the new bytes flow', async () => {
    const published = server.publish('/race/app.mjs', 'old', { sha256: true });
    const strict = fetcher({ url: published.url, sha256Url: `${published.url}.sha256` });
    const loose = fetcher({ url: published.url });
    const strictRelease = release(await strict.fetch(context()));
    const looseRelease = release(await loose.fetch(context()));
    server.publish('/race/app.mjs', 'new', { sha256: true });
    await rejectsWith(strictRelease.open(new AbortController().signal), 'ERR_OVERSEER_FETCH_FAILED', /changed between the poll and the download/);
    assert.equal((await read(await looseRelease.open(new AbortController().signal))).toString(), 'new');
  });
});

describe('failures', () => {
  test('404 and 500 are ERR_OVERSEER_FETCH_FAILED naming the URL and status', async () => {
    await rejectsWith(fetcher({ url: server.url('/nowhere/app.mjs') }).fetch(context()), 'ERR_OVERSEER_FETCH_FAILED', /HEAD http:\/\/127\.0\.0\.1:\d+\/nowhere\/app\.mjs answered 404 Not Found/);
    const published = server.publish('/broken/app.mjs', 'x');
    const http = fetcher({ url: published.url });
    const found = release(await http.fetch(context()));
    server.setMode('/broken/app.mjs', 'status-500');
    await rejectsWith(http.fetch(context()), 'ERR_OVERSEER_FETCH_FAILED', /answered 500 Internal Server Error/);
    await rejectsWith(found.open(new AbortController().signal), 'ERR_OVERSEER_FETCH_FAILED', /GET .*\/broken\/app\.mjs answered 500/);
  });

  test('a refused connection is ERR_OVERSEER_FETCH_FAILED with the cause', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const error = await rejectsWith(fetcher({ url: `http://127.0.0.1:${port}/app.mjs` }).fetch(context()), 'ERR_OVERSEER_FETCH_FAILED', /ECONNREFUSED/);
    assert.ok(error.cause !== undefined);
  });

  test('a server that never answers times out after `timeout`', async () => {
    server.publish('/slow/app.mjs', 'x');
    server.setMode('/slow/app.mjs', 'slow');
    const started = Date.now();
    await rejectsWith(fetcher({ url: server.url('/slow/app.mjs'), timeout: 300 }).fetch(context()), 'ERR_OVERSEER_FETCH_FAILED', /no response within 300 ms/);
    assert.ok(Date.now() - started < 5000, 'gave up long before the 30 s default');
  });

  test('aborting the context signal rejects with its reason at once', async () => {
    server.publish('/slow-abort/app.mjs', 'x');
    server.setMode('/slow-abort/app.mjs', 'slow');
    const controller = new AbortController();
    const pending = fetcher({ url: server.url('/slow-abort/app.mjs') }).fetch(context(controller.signal));
    await server.waitForRequest((request) => request.path === '/slow-abort/app.mjs');
    const reason = new Error('master stopping');
    controller.abort(reason);
    await assert.rejects(pending, (error: unknown) => error === reason);
  });

  test('a body that breaks off mid-way makes the stream fail with ERR_OVERSEER_DOWNLOAD_FAILED', async () => {
    const published = server.publishGenerated('/drop/app.bin', 4 * 1024 * 1024);
    server.setMode('/drop/app.bin', 'drop-mid-body');
    const found = release(await fetcher({ url: published.url }).fetch(context()));
    const body = await found.open(new AbortController().signal);
    await rejectsWith(read(body), 'ERR_OVERSEER_DOWNLOAD_FAILED', /download of .*\/drop\/app\.bin broke off after \d+ bytes/);
  });

  test('a body that stalls fails after `timeout` of silence', async () => {
    const published = server.publish('/stall/app.mjs', Buffer.alloc(64 * 1024, 1));
    server.setMode('/stall/app.mjs', 'stall-mid-body');
    const found = release(await fetcher({ url: published.url, timeout: 300 }).fetch(context()));
    const body = await found.open(new AbortController().signal);
    await rejectsWith(read(body), 'ERR_OVERSEER_DOWNLOAD_FAILED', /stalled: no data for 300 ms after 32768 bytes/);
  });

  test('aborting the open() signal destroys the stream with its reason', async () => {
    const published = server.publish('/abort-body/app.mjs', Buffer.alloc(64 * 1024, 1));
    server.setMode('/abort-body/app.mjs', 'stall-mid-body');
    const found = release(await fetcher({ url: published.url }).fetch(context()));
    const controller = new AbortController();
    const body = await found.open(controller.signal);
    const reason = new Error('download cancelled');
    const reading = read(body);
    controller.abort(reason);
    await assert.rejects(reading, (error: unknown) => error === reason);
  });
});

describe('options', () => {
  const invalid: Array<[string, unknown, RegExp]> = [
    ['no options', undefined, /HttpFetcher options must be an object such as \{ url \}; got undefined/],
    ['no url', {}, /HttpFetcher\.url must be given/],
    ['unknown key', { url: 'http://x/a', intervall: 5 }, /no option "intervall" \(did you mean "interval"\?\)/],
    ['bad url', { url: 'not a url' }, /HttpFetcher\.url must be an absolute http: or https: URL.*got "not a url"/],
    ['ftp url', { url: 'ftp://example.com/app' }, /HttpFetcher\.url must be .*got "ftp:\/\/example\.com\/app"/],
    ['negative interval', { url: 'http://x/a', interval: -1 }, /HttpFetcher\.interval must be a poll interval in milliseconds .*got -1/],
    ['string interval', { url: 'http://x/a', interval: '5m' }, /HttpFetcher\.interval .*got "5m"/],
    ['zero timeout', { url: 'http://x/a', timeout: 0 }, /HttpFetcher\.timeout must be a timeout in milliseconds/],
    ['bad header value', { url: 'http://x/a', headers: { 'x-a': 1 } }, /HttpFetcher\.headers must be .*got an object with keys "x-a"/],
    ['header injection', { url: 'http://x/a', headers: { 'x-a': 'a\r\nb: c' } }, /HttpFetcher\.headers/],
    ['bad sha256Url', { url: 'http://x/a', sha256Url: 'file:///etc/passwd' }, /HttpFetcher\.sha256Url must be/],
    ['bad signatureUrl', { url: 'http://x/a', signatureUrl: 42 }, /HttpFetcher\.signatureUrl must be .*got 42/],
  ];
  for (const [name, options, pattern] of invalid) {
    test(`rejects ${name}`, () => {
      assert.throws(
        () => new HttpFetcher(options as HttpFetcherOptions),
        (error: unknown) => isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG') && pattern.test(error.message),
      );
    });
  }

  test('defaults: 5 minute interval, name "http"', () => {
    const http = new HttpFetcher({ url: 'https://example.com/app.mjs' });
    assert.equal(http.interval, 300_000);
    assert.equal(http.name, 'http');
    assert.equal(new HttpFetcher({ url: new URL('https://example.com/a'), interval: 0 }).interval, 0);
  });
});

describe('loading', () => {
  // A resolve hook logs every module URL the child loads; the child then imports undici on
  // purpose to prove the log would have caught it.
  const hook = `
    import { appendFileSync } from 'node:fs';
    let log;
    export function initialize(data) { log = data.log; }
    export async function resolve(specifier, context, next) {
      const result = await next(specifier, context);
      appendFileSync(log, result.url + '\\n');
      return result;
    }`;
  const script = `
    import { register } from 'node:module';
    import { readFileSync } from 'node:fs';
    const log = process.env.OVERSEER_TEST_LOG;
    register('data:text/javascript,' + encodeURIComponent(process.env.OVERSEER_TEST_HOOK), { data: { log } });
    const heavy = () => readFileSync(log, 'utf8').split('\\n').filter((url) => /\\/node_modules\\/(undici|@aws-sdk|@octokit)\\//.test(url));
    await import(process.env.OVERSEER_TEST_TARGET);
    const before = heavy();
    await import('undici');
    console.log(JSON.stringify({ before, after: heavy() }));`;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'overseer-http-load-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function heavyModulesLoadedBy(file: string): Promise<{ before: string[]; after: string[] }> {
    const log = path.join(dir, `${path.basename(file)}.log`);
    await writeFile(log, '');
    const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        {
          cwd: root,
          timeout: 15_000,
          env: { ...process.env, OVERSEER_TEST_LOG: log, OVERSEER_TEST_HOOK: hook, OVERSEER_TEST_TARGET: pathToFileURL(path.join(root, file)).href },
        },
        (error, out, err) => (error === null ? resolve({ stdout: out }) : reject(new Error(`${error.message}\n${err}`))),
      );
    });
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { before: string[]; after: string[] };
  }

  test('importing fetchers/http.ts does not load undici', async () => {
    const loaded = await heavyModulesLoadedBy('fetchers/http.ts');
    assert.deepEqual(loaded.before, []);
    assert.ok(loaded.after.some((url) => url.includes('/undici/')), 'the probe sees undici once it is imported');
  });

  const allFetchers = ['s3.ts', 'github.ts'].every((file) => existsSync(path.join(root, 'fetchers', file)));
  test('importing fetchers/index.ts loads none of undici, the AWS SDK or Octokit', { skip: allFetchers ? false : 'fetchers/s3.ts or github.ts not written yet' }, async () => {
    const loaded = await heavyModulesLoadedBy('fetchers/index.ts');
    assert.deepEqual(loaded.before, []);
  });
});

describe('proxies', () => {
  const names = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY'] as const;
  const saved = new Map<string, string | undefined>();
  let proxy: Server;
  let proxyUrl: string;
  const tunnels: string[] = [];
  const sockets = new Set<Socket>();

  before(async () => {
    for (const name of names) saved.set(name, process.env[name]);
    // A forward proxy on loopback: CONNECT tunnels (undici's default) and absolute-form requests.
    proxy = createServer((req, res) => {
      tunnels.push(`${req.method} ${req.url}`);
      const upstream = httpRequest(req.url ?? '', { method: req.method, headers: req.headers }, (response) => {
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    proxy.on('connect', (req, client: Socket, head: Buffer) => {
      tunnels.push(`CONNECT ${req.url}`);
      const [host, port] = (req.url ?? '').split(':');
      const target = connect(Number(port), host ?? '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        target.write(head);
        target.pipe(client);
        client.pipe(target);
      });
      for (const socket of [client, target]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });

  afterEach(() => {
    for (const name of names) {
      const value = saved.get(name);
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    proxy.closeAllConnections();
    await new Promise((resolve) => proxy.close(resolve));
  });

  function useProxy(noProxy: string): void {
    for (const name of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY'] as const) process.env[name] = proxyUrl;
    process.env['no_proxy'] = noProxy;
    process.env['NO_PROXY'] = noProxy;
  }

  test('HTTP_PROXY carries every request', async () => {
    const published = server.publish('/proxied/app.mjs', 'via proxy');
    useProxy('');
    const http = fetcher({ url: published.url });
    const found = release(await http.fetch(context()));
    assert.equal((await read(await found.open(new AbortController().signal))).toString(), 'via proxy');
    const port = new URL(server.origin).port;
    assert.ok(tunnels.length > 0, 'the proxy saw the requests');
    assert.ok(tunnels.every((line) => line.includes(`127.0.0.1:${port}`)), tunnels.join(', '));
  });

  test('NO_PROXY sends matching hosts direct', async () => {
    const published = server.publish('/direct/app.mjs', 'direct');
    useProxy('127.0.0.1');
    const seen = tunnels.length;
    const found = release(await fetcher({ url: published.url }).fetch(context()));
    assert.equal((await read(await found.open(new AbortController().signal))).toString(), 'direct');
    assert.equal(tunnels.length, seen, 'the proxy saw nothing');
    assert.deepEqual(requestsTo('/direct/app.mjs'), ['HEAD', 'GET']);
  });
});
