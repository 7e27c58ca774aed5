/**
 * The attacker's redirects, end to end against real loopback servers: a release server on
 * 127.0.0.1 redirecting to a second origin on [::1] that records what it receives, an https:
 * server redirecting to plain http:, and plain http: URLs to other machines.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GitHubFetcher } from '../../fetchers/github.ts';
import { HttpFetcher } from '../../fetchers/http.ts';
import { S3Fetcher } from '../../fetchers/s3.ts';
import { isOverseerError } from '../../src/errors.ts';
import { startGitHubApi } from '../../support/github-api.ts';
import { startReleaseServer, type ReleaseServer } from '../../support/release-server.ts';
import { context, readAll, releaseOf, httpFetchers } from '../helpers/fetch.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const certFile = path.join(root, 'test/fixtures/tls/cert.pem');
const tls = { key: readFileSync(path.join(root, 'test/fixtures/tls/key.pem')), cert: readFileSync(certFile) };
const SECRETS = { 'x-api-key': 'k3y', 'private-token': 'gl-t0ken', authorization: 'Bearer t0ken', cookie: 'session=s3cret' };

let home: ReleaseServer;
let elsewhere: ReleaseServer;
const fetcher = httpFetchers();

before(async () => {
  home = await startReleaseServer();
  elsewhere = await startReleaseServer({ host: '::1' });
});
after(async () => {
  await Promise.all([home.close(), elsewhere.close()]);
});


describe('cross-origin redirects', () => {
  test('carry none of the configured headers (release, sha256 and signature); the same origin keeps them', async () => {
    const published = elsewhere.publish('/mirror/app.mjs', 'from the mirror', { sha256: true, signature: 'untrusted comment: x\n' });
    home.redirect('/app.mjs', published.url);
    home.redirect('/app.mjs.sha256', `${published.url}.sha256`);
    home.redirect('/app.mjs.minisig', `${published.url}.minisig`);
    home.publish('/moved/app.mjs', 'moved here');
    home.redirect('/same/app.mjs', '/moved/app.mjs');

    const http = fetcher({
      url: home.url('/app.mjs'),
      headers: SECRETS,
      sha256Url: home.url('/app.mjs.sha256'),
      signatureUrl: home.url('/app.mjs.minisig'),
    });
    const found = releaseOf(await http.fetch(context()));
    assert.equal((await readAll(await found.open(new AbortController().signal))).toString(), 'from the mirror');
    assert.equal(found.sha256, published.sha256);

    const atMirror = elsewhere.requests.filter((request) => request.path.startsWith('/mirror/'));
    assert.deepEqual(atMirror.map((request) => `${request.method} ${request.path}`).sort(), [
      'GET /mirror/app.mjs',
      'GET /mirror/app.mjs.minisig',
      'GET /mirror/app.mjs.sha256',
      'HEAD /mirror/app.mjs',
    ]);
    for (const request of atMirror) {
      for (const name of Object.keys(SECRETS)) assert.equal(request.headers[name], undefined, `${name} leaked to ${request.method} ${request.path}`);
      assert.equal(request.headers['user-agent'], 'overseer');
    }
    for (const request of home.requests.filter((each) => each.path === '/app.mjs')) assert.equal(request.headers['x-api-key'], 'k3y');

    const same = releaseOf(await fetcher({ url: home.url('/same/app.mjs'), headers: SECRETS }).fetch(context()));
    assert.equal((await readAll(await same.open(new AbortController().signal))).toString(), 'moved here');
    const moved = home.requests.filter((request) => request.path === '/moved/app.mjs');
    assert.equal(moved.length, 2);
    for (const request of moved) assert.equal(request.headers['x-api-key'], 'k3y', 'a same-origin redirect keeps the headers');
  });

  test('headers dropped on leaving the origin stay dropped when the chain comes back to it', async () => {
    home.publish('/back/app.mjs', 'back home');
    home.redirect('/bounce/app.mjs', elsewhere.url('/bounce/app.mjs'));
    elsewhere.redirect('/bounce/app.mjs', home.url('/back/app.mjs'));
    const found = releaseOf(await fetcher({ url: home.url('/bounce/app.mjs'), headers: SECRETS }).fetch(context()));
    assert.equal((await readAll(await found.open(new AbortController().signal))).toString(), 'back home');
    const back = home.requests.filter((request) => request.path === '/back/app.mjs');
    assert.equal(back.length, 2);
    for (const request of back) assert.equal(request.headers['private-token'], undefined);
  });

  test('a redirect to plain http: on another machine is refused (IPv4-mapped loopback stands in for it)', async () => {
    home.publish('/far/app.mjs', 'far away');
    const port = new URL(home.origin).port;
    home.redirect('/to-far/app.mjs', `http://[::ffff:127.0.0.1]:${port}/far/app.mjs`);
    await assert.rejects(fetcher({ url: home.url('/to-far/app.mjs') }).fetch(context()), (error: unknown) => {
      assert.ok(isOverseerError(error, 'ERR_OVERSEER_INSECURE_REDIRECT'), String(error));
      assert.match(error.message, /plain http: on another machine.*allowInsecureHttp/);
      return true;
    });
    assert.equal(home.requests.filter((request) => request.path === '/far/app.mjs').length, 0);

    const warnings = captureWarnings();
    try {
      const allowed = releaseOf(await fetcher({ url: home.url('/to-far/app.mjs'), allowInsecureHttp: true }).fetch(context()));
      assert.equal((await readAll(await allowed.open(new AbortController().signal))).toString(), 'far away');
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(warnings.filter((warning) => warning.includes('[::ffff:7f00:1]')).length, 1, 'warned once');
    } finally {
      warnings.stop();
    }
  });
});

describe('https: to http:', () => {
  let secure: ReleaseServer;
  before(async () => {
    secure = await startReleaseServer({ tls });
  });
  after(async () => {
    await secure.close();
  });

  test('HttpFetcher refuses the redirect and never contacts the http: host', async () => {
    secure.publish('/direct/app.mjs', 'over tls');
    const plain = home.publish('/downgraded/app.mjs', 'in clear text');
    secure.redirect('/app.mjs', plain.url);

    const control = await inChild({ kind: 'http', options: { url: secure.url('/direct/app.mjs') } });
    assert.deepEqual(control, { ok: true, body: 'over tls' }, 'the child trusts the test certificate');

    const result = await inChild({ kind: 'http', options: { url: secure.url('/app.mjs'), headers: SECRETS } });
    assert.equal(result.ok, false);
    assert.equal(result.code, 'ERR_OVERSEER_INSECURE_REDIRECT', String(result.message));
    assert.match(String(result.message), /from https: to plain http:/);
    assert.equal(home.requests.filter((request) => request.path === '/downgraded/app.mjs').length, 0);
  });

  test('GitHubFetcher refuses an asset redirect from the https: API to an http: host', async () => {
    const api = await startGitHubApi({ tls, token: 'gh-t0ken' });
    try {
      api.publishRelease({ tag: 'v1.0.0', assets: [{ name: 'app.mjs', body: 'asset bytes' }] });
      const result = await inChild({
        kind: 'github',
        options: { owner: api.owner, repo: api.repo, baseUrl: api.baseUrl, asset: 'app.mjs', token: 'gh-t0ken' },
      });
      assert.equal(result.stage, 'open', 'the listing over https: worked');
      assert.equal(result.code, 'ERR_OVERSEER_INSECURE_REDIRECT', String(result.message));
      assert.deepEqual(api.requests.filter((request) => request.server === 'download'), []);
    } finally {
      await api.close();
    }
  });
});

describe('plain http: sources', () => {
  test('are refused unless loopback or allowInsecureHttp, which warns once per origin', () => {
    const refused = (make: () => unknown, option: RegExp) =>
      assert.throws(make, (error: unknown) => isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG') && option.test(error.message));
    refused(() => new HttpFetcher({ url: 'http://user:pw@releases.example.com/app.mjs' }), /HttpFetcher\.url must be an https: URL.*allowInsecureHttp/);
    refused(() => new HttpFetcher({ url: 'https://releases.example.com/app.mjs', sha256Url: 'http://releases.example.com/app.mjs.sha256' }), /HttpFetcher\.sha256Url/);
    refused(() => new HttpFetcher({ url: 'https://releases.example.com/a', signatureUrl: 'http://10.0.0.1/a.minisig' }), /HttpFetcher\.signatureUrl/);
    refused(() => new GitHubFetcher({ owner: 'a', repo: 'b', baseUrl: 'http://ghe.example.com/api/v3' }), /GitHubFetcher\.baseUrl/);
    refused(() => new S3Fetcher({ bucket: 'b', key: 'k', endpoint: 'http://minio.example.com:9000' }), /S3Fetcher\.endpoint/);
    refused(() => new HttpFetcher({ url: 'http://user:pw@releases.example.com/app.mjs', allowInsecureHttp: 'yes' } as never), /allowInsecureHttp must be true or false/);

    for (const url of ['http://127.0.0.1:1/a', 'http://127.1.2.3/a', 'http://[::1]:1/a', 'http://localhost:1/a']) new HttpFetcher({ url });
    const warnings = captureWarnings();
    try {
      new HttpFetcher({ url: 'http://insecure.example.com/a', allowInsecureHttp: true });
      new HttpFetcher({ url: 'http://insecure.example.com/b', allowInsecureHttp: true });
      new S3Fetcher({ bucket: 'b', key: 'k', endpoint: 'http://minio.example.com:9000', allowInsecureHttp: true });
      new GitHubFetcher({ owner: 'a', repo: 'b', baseUrl: 'http://ghe.example.com/api/v3', allowInsecureHttp: true });
    } finally {
      warnings.stop();
    }
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        assert.equal(warnings.length, 3, warnings.join('\n'));
        assert.match(warnings[0] ?? '', /HttpFetcher fetches from http:\/\/insecure\.example\.com over plain http:/);
        resolve();
      }),
    );
  });
});

function captureWarnings(): string[] & { stop(): void } {
  const seen: string[] = [];
  const onWarning = (warning: Error & { code?: string }) => {
    if (warning.code === 'OVERSEER_INSECURE_HTTP') seen.push(warning.message);
  };
  process.on('warning', onWarning);
  return Object.assign(seen, { stop: () => setImmediate(() => process.off('warning', onWarning)) });
}

interface ChildResult {
  readonly ok: boolean;
  readonly stage?: string;
  readonly code?: string;
  readonly message?: string;
  readonly body?: string;
}

/**
 * Runs a fetcher in a child that trusts the test certificate (NODE_EXTRA_CA_CERTS is read at
 * start-up only), polls once, downloads, and reports what happened.
 */
async function inChild(spec: { kind: 'http' | 'github'; options: Record<string, unknown> }): Promise<ChildResult> {
  const script = `
    const { HttpFetcher, GitHubFetcher } = await import(process.env.OVERSEER_TEST_FETCHERS);
    const spec = JSON.parse(process.env.OVERSEER_TEST_SPEC);
    const fetcher = spec.kind === 'http' ? new HttpFetcher(spec.options) : new GitHubFetcher(spec.options);
    const signal = new AbortController().signal;
    let stage = 'fetch';
    try {
      const result = await fetcher.fetch({ signal, currentSha256: '0'.repeat(64), currentVersion: undefined });
      stage = 'open';
      const chunks = [];
      for await (const chunk of await result.release.open(signal)) chunks.push(chunk);
      console.log(JSON.stringify({ ok: true, body: Buffer.concat(chunks).toString() }));
    } catch (error) {
      console.log(JSON.stringify({ ok: false, stage, code: error.code, message: error.message }));
    } finally {
      await fetcher.close?.();
    }`;
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: root,
        timeout: 20_000,
        env: {
          ...process.env,
          NODE_EXTRA_CA_CERTS: certFile,
          OVERSEER_TEST_FETCHERS: pathToFileURL(path.join(root, 'fetchers/index.ts')).href,
          OVERSEER_TEST_SPEC: JSON.stringify(spec),
        },
      },
      (error, out, err) => (error === null ? resolve(out) : reject(new Error(`${error.message}\n${err}`))),
    );
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as ChildResult;
}
