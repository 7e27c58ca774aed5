import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { assertAbortEndsStream, context, readAll, releaseOf } from '../helpers/fetch.ts';
import { modulesLoadedBy } from '../helpers/modules.ts';
import { after, afterEach, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { S3Fetcher, type S3FetcherOptions } from '../../fetchers/s3.ts';
import { isOverseerError } from '../../src/errors.ts';
import { S3_CREDENTIALS, startS3, type S3Server } from '../../support/s3.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const md5 = (data: string | Buffer) => createHash('md5').update(data).digest('hex');
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

async function rejectsWithFetchFailed(promise: Promise<unknown>, pattern: RegExp): Promise<Error> {
  let caught: Error | undefined;
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isOverseerError(error, 'ERR_OVERSEER_FETCH_FAILED'), `expected ERR_OVERSEER_FETCH_FAILED, got ${String(error)}`);
    assert.match(error.message, pattern);
    caught = error;
    return true;
  });
  return caught!;
}

async function connectionsTo(server: Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}

async function waitFor(check: () => Promise<boolean>, what: string, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('S3Fetcher against s3rver', () => {
  let s3: S3Server;
  const fetchers: S3Fetcher[] = [];

  function fetcher(key: string, options: Partial<S3FetcherOptions> = {}): S3Fetcher {
    const created = new S3Fetcher({
      bucket: s3.bucket,
      key,
      endpoint: s3.endpoint,
      forcePathStyle: true,
      // Frozen, as a user's config may be: the SDK writes into credentials objects.
      credentials: Object.freeze({ ...S3_CREDENTIALS }),
      ...options,
    });
    fetchers.push(created);
    return created;
  }

  before(async () => {
    s3 = await startS3();
  });

  afterEach(() => {
    for (const created of fetchers.splice(0)) created.close();
  });

  after(async () => {
    await s3.close();
  });

  test('describes the object from HeadObject and streams it with GetObject pinned to the ETag', async () => {
    const body = randomBytes(2 * 1024 * 1024 + 5);
    await s3.put('app.mjs', body, { version: '1.4.0' });
    const release = releaseOf(await fetcher('app.mjs').fetch(context()));
    assert.equal(release.id, md5(body));
    assert.equal(release.size, body.length);
    assert.equal(release.version, '1.4.0');
    assert.equal(release.sha256, undefined);
    assert.equal(release.gzip, false);
    assert.equal(release.source, `s3://${s3.bucket}/app.mjs`);

    const stream = await release.open(new AbortController().signal);
    assert.ok(stream instanceof Readable, 'a Node Readable, not a buffer');
    assert.equal(sha256(await readAll(stream)), sha256(body));
    const get = s3.requests.findLast((request) => request.method === 'GET');
    assert.equal(get?.url.startsWith(`/${s3.bucket}/app.mjs`), true, 'path style on the custom endpoint');
    assert.equal(get?.headers['if-match'], `"${md5(body)}"`);
  });

  test('a new upload has a new id; the same bytes keep theirs', async () => {
    const polling = fetcher('moving.mjs');
    await s3.put('moving.mjs', 'one');
    const first = releaseOf(await polling.fetch(context()));
    const again = releaseOf(await polling.fetch(context()));
    assert.equal(again.id, first.id);
    await s3.put('moving.mjs', 'two');
    const second = releaseOf(await polling.fetch(context()));
    assert.notEqual(second.id, first.id);
    assert.equal(second.id, md5('two'));
    assert.equal((await readAll(await second.open(new AbortController().signal))).toString(), 'two');
  });

  test('surfaces x-amz-meta-sha256 (lowercased) and refuses a malformed one', async () => {
    await s3.put('signed.mjs', 'payload', { sha256: sha256('payload').toUpperCase() });
    assert.equal(releaseOf(await fetcher('signed.mjs').fetch(context())).sha256, sha256('payload'));
    await s3.put('bad-sum.mjs', 'payload', { sha256: 'not-a-hash' });
    await rejectsWithFetchFailed(fetcher('bad-sum.mjs').fetch(context()), /"not-a-hash".*64 hex digits/);
  });

  test('reads <key>.sha256 and <key>.minisig next to the object, as signing.md says; absent ones are none', async () => {
    const signature = 'untrusted comment: signature from minisign secret key\nRUQ...\ntrusted comment: app 2.0.0\nabc==\n';
    await s3.put('sided/app.mjs', 'payload');
    await s3.put('sided/app.mjs.sha256', `${sha256('payload').toUpperCase()}  app.mjs\n`);
    await s3.put('sided/app.mjs.minisig', signature);
    const release = releaseOf(await fetcher('sided/app.mjs').fetch(context()));
    assert.equal(release.sha256, sha256('payload'));
    assert.equal(release.signature, signature);
    assert.ok(s3.requests.some((request) => request.method === 'GET' && request.url.startsWith(`/${s3.bucket}/sided/app.mjs.minisig`)));

    await s3.put('bare/app.mjs', 'payload');
    const bare = releaseOf(await fetcher('bare/app.mjs').fetch(context()));
    assert.equal(bare.sha256, undefined);
    assert.equal(bare.signature, undefined);

    await s3.put('both/app.mjs', 'payload', { sha256: sha256('payload') });
    await s3.put('both/app.mjs.sha256', sha256('payload'));
    assert.equal(releaseOf(await fetcher('both/app.mjs').fetch(context())).sha256, sha256('payload'), 'metadata and sidecar agree');
  });

  test('a malformed, empty or disagreeing sidecar fails the poll', async () => {
    await s3.put('odd/app.mjs', 'payload');
    await s3.put('odd/app.mjs.sha256', 'not a hash\n');
    await rejectsWithFetchFailed(fetcher('odd/app.mjs').fetch(context()), /sha256 sidecar at s3:\/\/releases\/odd\/app\.mjs\.sha256/);
    await s3.put('empty-sig/app.mjs', 'payload');
    await s3.put('empty-sig/app.mjs.minisig', ' \n');
    await rejectsWithFetchFailed(fetcher('empty-sig/app.mjs').fetch(context()), /signature at s3:\/\/releases\/empty-sig\/app\.mjs\.minisig is empty/);
    await s3.put('split/app.mjs', 'payload', { sha256: sha256('payload') });
    await s3.put('split/app.mjs.sha256', sha256('other'));
    await rejectsWithFetchFailed(fetcher('split/app.mjs').fetch(context()), /x-amz-meta-sha256 .* but .*app\.mjs\.sha256 says/);
  });

  test('marks gzip for a .gz key and for Content-Encoding: gzip (Node does not decode it)', async () => {
    await s3.put('app.mjs.gz', gzipSync('compressed'));
    assert.equal(releaseOf(await fetcher('app.mjs.gz').fetch(context())).gzip, true);

    const encoded = gzipSync('encoded');
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: 'encoded.mjs', Body: encoded, ContentEncoding: 'gzip' }),
    );
    const release = releaseOf(await fetcher('encoded.mjs').fetch(context()));
    assert.equal(release.gzip, true);
    assert.deepEqual(await readAll(await release.open(new AbortController().signal)), encoded, 'arrives still compressed');
  });

  test('a missing key is a coded error naming s3://bucket/key', async () => {
    const error = await rejectsWithFetchFailed(fetcher('missing.mjs').fetch(context()), /s3:\/\/releases\/missing\.mjs.*404/);
    assert.equal((error as { subject?: string }).subject, 's3://releases/missing.mjs');
    assert.ok(error.cause !== undefined);
  });

  test('wrong credentials and an unreachable endpoint are coded errors; an abort rejects with its reason', async () => {
    await s3.put('guarded.mjs', 'x');
    await rejectsWithFetchFailed(
      fetcher('guarded.mjs', { credentials: { accessKeyId: 'nobody', secretAccessKey: 'nothing' } }).fetch(context()),
      /403.*credentials/,
    );
    const provided = fetcher('guarded.mjs', { credentials: async () => Object.freeze({ ...S3_CREDENTIALS }) });
    assert.equal(releaseOf(await provided.fetch(context())).id, md5('x'), 'a provider of frozen credentials works');

    const reason = new Error('the master stops');
    const aborted = new AbortController();
    aborted.abort(reason);
    await assert.rejects(fetcher('guarded.mjs').fetch(context(aborted.signal)), (error) => error === reason);
    const release = releaseOf(await fetcher('guarded.mjs').fetch(context()));
    await assert.rejects(release.open(aborted.signal), (error) => error === reason);

    const closed = await startS3();
    const unreachable = closed.endpoint;
    await closed.close();
    await rejectsWithFetchFailed(fetcher('guarded.mjs', { endpoint: unreachable }).fetch(context()), /s3:\/\/releases\/guarded\.mjs/);
  });

  test('aborting the open() signal mid-download ends the stream with the abort reason', async () => {
    await s3.put('large.mjs', randomBytes(8 * 1024 * 1024));
    const release = releaseOf(await fetcher('large.mjs').fetch(context()));
    await assertAbortEndsStream(release, 8 * 1024 * 1024);
  });

  test('close() releases the client and its sockets', async () => {
    await s3.put('closing.mjs', 'x');
    await s3.put('baseline.mjs', 'y');
    const before = await connectionsTo(s3.server);
    const closing = fetcher('closing.mjs');
    await closing.fetch(context());
    assert.ok((await connectionsTo(s3.server)) > before, 'the fetcher kept a keep-alive socket');
    closing.close();
    await waitFor(async () => (await connectionsTo(s3.server)) <= before, 'the fetcher socket to close');
    assert.equal(releaseOf(await closing.fetch(context())).source, 's3://releases/closing.mjs', 'usable again after close');
  });

  test('validates its options in the constructor', () => {
    const fails = (options: unknown, pattern: RegExp) =>
      assert.throws(() => new S3Fetcher(options as S3FetcherOptions), (error: unknown) => {
        assert.ok(isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG'));
        assert.match(error.message, pattern);
        return true;
      });
    fails(null, /S3Fetcher options must be an object such as \{ bucket, key \}; got null/);
    fails({ key: 'k' }, /S3Fetcher\.bucket must be given \(a non-empty string\); got undefined/);
    fails({ bucket: 42, key: 'k' }, /S3Fetcher\.bucket must be a non-empty string; got 42/);
    fails({ bucket: 'b', key: '' }, /S3Fetcher\.key must be a non-empty string; got ""/);
    fails({ bucket: 'b', key: 'k', regin: 'eu-west-1' }, /S3Fetcher has no option "regin" \(did you mean "region"\?\); its options are bucket, key/);
    fails({ bucket: 'b', key: 'k', interval: '5s' }, /S3Fetcher\.interval must be .*; got "5s"/);
    fails({ bucket: 'b', key: 'k', region: '' }, /S3Fetcher\.region/);
    fails({ bucket: 'b', key: 'k', endpoint: 'localhost:9000' }, /S3Fetcher\.endpoint must be an absolute http: or https: URL/);
    fails({ bucket: 'b', key: 'k', forcePathStyle: 1 }, /S3Fetcher\.forcePathStyle must be true or false; got 1/);
    fails({ bucket: 'b', key: 'k', credentials: { accessKeyId: 'a' } }, /S3Fetcher\.credentials must be/);

    const defaults = new S3Fetcher({ bucket: 'b', key: 'k' });
    assert.equal(defaults.name, 's3');
    assert.equal(defaults.interval, 300_000);
  });
});

test('a sidecar that exists but cannot be read fails the poll rather than counting as absent', async () => {
  // s3rver has no access control, so a bare server plays a bucket that denies the sidecar.
  const server = createServer((request, response) => {
    const key = new URL(request.url ?? '/', 'http://x').pathname;
    if (key === '/releases/app.mjs') return void response.writeHead(200, { etag: '"e1"', 'content-length': 1 }).end();
    const code = key.endsWith('.minisig') ? 'AccessDenied' : 'NoSuchKey';
    response.writeHead(code === 'AccessDenied' ? 403 : 404, { 'content-type': 'application/xml' });
    response.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>no</Message></Error>`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const s3 = new S3Fetcher({
    bucket: 'releases',
    key: 'app.mjs',
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    forcePathStyle: true,
    credentials: { ...S3_CREDENTIALS },
  });
  try {
    await rejectsWithFetchFailed(s3.fetch(context()), /could not read the signature s3:\/\/releases\/app\.mjs\.minisig: access was denied \(403\).*grant s3:ListBucket/);
  } finally {
    s3.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});


test('importing and constructing S3Fetcher does not load the AWS SDK', async () => {
  const sdk = /[\\/]node_modules[\\/](@aws-sdk|@smithy)[\\/]/;
  const control = await modulesLoadedBy('@aws-sdk/client-s3');
  assert.ok(control.some((url) => sdk.test(url)), 'the probe sees an eager import of the SDK');

  const fetcherUrl = pathToFileURL(path.join(root, 'fetchers/s3.ts')).href;
  const loaded = await modulesLoadedBy(fetcherUrl, "new loaded.S3Fetcher({ bucket: 'b', key: 'k' });");
  assert.ok(loaded.includes(fetcherUrl), 'the probe saw the fetcher load');
  assert.deepEqual(loaded.filter((url) => sdk.test(url)), []);
});
