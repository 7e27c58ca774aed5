/**
 * HttpFetcher's conventions: URLs written without a host are refused when it is built; the
 * `<url>.minisig` and `<url>.sha256` sidecars are read when the master's verification asks for
 * them (and only then); and a Last-Modified too recent to trust names no release (racy timestamps),
 * against a real Python http.server, which sends no ETag.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HttpFetcher } from '../../fetchers/http.ts';
import { identityOf, RACY_MS } from '../../fetchers/http-parts.ts';
import { isOverseerError } from '../../src/errors.ts';
import type { FetchContext, ReleaseWants } from '../../src/upgrade/fetcher.ts';
import { startReleaseServer, type ReleaseServer } from '../../support/release-server.ts';
import { readAll, releaseOf, httpFetchers } from '../helpers/fetch.ts';
import { hasPython, startPythonServer } from './python-http-server.ts';

let server: ReleaseServer;
const fetcher = httpFetchers();
before(async () => {
  server = await startReleaseServer();
});
after(() => server.close());


const context = (wants?: ReleaseWants): FetchContext => ({
  signal: new AbortController().signal, currentSha256: '0'.repeat(64), currentVersion: undefined, ...(wants ? { wants } : {}),
});
const requested = (file: string) => server.requests.filter((request) => request.path === file).length;
const SIGNATURE = 'untrusted comment: signature\nRUQ...\ntrusted comment: version:2.0.0\nabc\n';

describe('URLs without a host', () => {
  for (const url of ['http:///app.mjs', 'https:app.mjs', 'https:/app.mjs', 'http:\\\\\\app.mjs']) {
    test(`${JSON.stringify(url)} is refused when the fetcher is built, naming the value and the fix`, () => {
      assert.throws(() => new HttpFetcher({ url }), (error) => {
        assert.ok(isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG'));
        assert.ok(error.message.includes(JSON.stringify(url)), error.message);
        assert.match(error.message, /has no host.*"app\.mjs" as the host.*releases\.example\.com\/app\.mjs/);
        assert.equal(error.subject, 'HttpFetcher.url');
        return true;
      });
    });
  }

  test('the sidecar URLs are held to the same rule; URLs with a host (and URL objects) pass', () => {
    assert.throws(() => new HttpFetcher({ url: 'http://127.0.0.1/app.mjs', signatureUrl: 'http:///app.mjs.minisig' }), /HttpFetcher\.signatureUrl "http:\/\/\/app\.mjs\.minisig" has no host/);
    assert.throws(() => new HttpFetcher({ url: 'http://127.0.0.1/app.mjs', sha256Url: 'https:app.mjs.sha256' }), /HttpFetcher\.sha256Url/);
    new HttpFetcher({ url: 'HTTP://127.0.0.1:8080/app.mjs' });
    new HttpFetcher({ url: new URL('http://127.0.0.1/app.mjs') });
  });
});

describe('sidecars by convention', () => {
  test('with a signature wanted and no signatureUrl, <url>.minisig is read', async () => {
    const published = server.publish('/conv/app.mjs', 'v2', { signature: SIGNATURE });
    const found = releaseOf(await fetcher({ url: published.url }).fetch(context({ signature: true, sha256: false })));
    assert.equal(found.signature, SIGNATURE);
  });

  test('with a sha256 wanted and no sha256Url, <url>.sha256 is read', async () => {
    const published = server.publish('/conv-sha/app.mjs', 'v2', { sha256: true });
    const found = releaseOf(await fetcher({ url: published.url }).fetch(context({ signature: false, sha256: true })));
    assert.equal(found.sha256, createHash('sha256').update('v2').digest('hex'));
  });

  test('a conventional sidecar that is not published (404) means none; a configured one that is not fails the poll', async () => {
    const published = server.publish('/conv-none/app.mjs', 'v2');
    const found = releaseOf(await fetcher({ url: published.url }).fetch(context({ signature: true, sha256: true })));
    assert.equal(found.signature, undefined);
    assert.equal(found.sha256, undefined);
    assert.equal(requested('/conv-none/app.mjs.minisig'), 1);
    assert.equal(requested('/conv-none/app.mjs.sha256'), 1);
    const configured = fetcher({ url: published.url, signatureUrl: server.url('/conv-none/elsewhere.minisig') });
    await assert.rejects(configured.fetch(context({ signature: true, sha256: false })), /elsewhere\.minisig \(the signature \(HttpFetcher\.signatureUrl\)\) answered 404/);
    assert.equal(requested('/conv-none/app.mjs.minisig'), 1, 'the configured URL wins over the convention');
  });

  test('any other failure of a conventional sidecar fails the poll', async () => {
    const published = server.publish('/conv-500/app.mjs', 'v2', { signature: SIGNATURE });
    server.setMode('/conv-500/app.mjs.minisig', 'status-500');
    await assert.rejects(fetcher({ url: published.url }).fetch(context({ signature: true, sha256: false })), (error) => {
      assert.ok(isOverseerError(error, 'ERR_OVERSEER_FETCH_FAILED'));
      assert.match(error.message, /app\.mjs\.minisig \(the signature \(verify\.publicKey is set\)\) answered 500/);
      return true;
    });
  });

  test('the convention costs a request only when verification wants it (a caller that says nothing wants nothing)', async () => {
    const published = server.publish('/conv-quiet/app.mjs', 'v2', { signature: SIGNATURE, sha256: true });
    const http = fetcher({ url: published.url });
    assert.equal(releaseOf(await http.fetch(context({ signature: false, sha256: false }))).signature, undefined);
    assert.equal(releaseOf(await http.fetch(context())).signature, undefined);
    assert.equal(requested('/conv-quiet/app.mjs.minisig') + requested('/conv-quiet/app.mjs.sha256'), 0);
    assert.equal(releaseOf(await http.fetch(context({ signature: true, sha256: false }))).signature, SIGNATURE);
    assert.equal(requested('/conv-quiet/app.mjs.minisig'), 1);
    assert.equal(requested('/conv-quiet/app.mjs.sha256'), 0);
  });
});

describe('racy timestamps', () => {
  const headers = (lastModified: Date, date?: Date) => ({
    'last-modified': lastModified.toUTCString(), 'content-length': '10', ...(date ? { date: date.toUTCString() } : {}),
  });

  test('a Last-Modified within RACY_MS of the response Date (or after it) names nothing; an older one does', () => {
    const date = new Date(Math.floor(Date.now() / 1000) * 1000);
    assert.equal(identityOf(headers(date, date)), undefined, 'the same second');
    assert.equal(identityOf(headers(new Date(date.getTime() - 1000), date)), undefined, 'a second before');
    assert.equal(identityOf(headers(new Date(date.getTime() + 5000), date)), undefined, 'in the future');
    assert.equal(identityOf(headers(new Date(date.getTime() - RACY_MS), date)), `${new Date(date.getTime() - RACY_MS).toUTCString()}; 10`);
    assert.equal(identityOf({ ...headers(date, date), 'last-modified': 'not a date' }), undefined, 'unreadable');
    assert.equal(identityOf({ ...headers(date, date), etag: '"x"' }), '"x"', 'an ETag is always trusted');
  });

  test('without a Date header, now is the reference', () => {
    const now = Date.now();
    assert.equal(identityOf(headers(new Date(now)), now), undefined);
    assert.ok(identityOf(headers(new Date(now - 10_000)), now) !== undefined);
  });

  test("Python's http.server: a file just written has no id (the master compares bytes); once it has aged, Last-Modified and length name it", { skip: !hasPython && 'python3 is not installed' }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-racy-'));
    const python = await startPythonServer(dir);
    try {
      const file = path.join(dir, 'app.mjs');
      fs.writeFileSync(file, 'release 2');
      const http = fetcher({ url: `${python.origin}/app.mjs` });
      const fresh = releaseOf(await http.fetch(context()));
      assert.equal(fresh.id, undefined, 'the same second as the write: bytes written later in it would keep this Last-Modified');
      assert.equal(fresh.size, 9);
      assert.equal((await readAll(await fresh.open(new AbortController().signal))).toString(), 'release 2');
      const aged = new Date(Date.now() - 60_000);
      fs.utimesSync(file, aged, aged);
      const settled = releaseOf(await http.fetch(context()));
      assert.ok(settled.id?.includes(new Date(Math.floor(aged.getTime() / 1000) * 1000).toUTCString()), String(settled.id));
      assert.ok(settled.id?.endsWith('; 9'), String(settled.id));
    } finally {
      await python.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
