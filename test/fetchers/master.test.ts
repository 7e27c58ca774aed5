/**
 * The fetcher attacks seen from a real master: a release server that drips the new release, or
 * redirects it to a host that records what it is sent. The running child keeps serving, the
 * installed bundle stays as it was, the master reports the code, and the genuine release still
 * arrives once the attack stops. Needs `npm run build` (the bundles import dist/).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { OverseerEvent } from '../../src/events.ts';
import { bundleSource } from '../helpers/bundles.ts';
import { ask } from '../helpers/load.ts';
import { root, tempDir } from '../helpers/master.ts';
import { master, releaseServer } from '../helpers/ended.ts';


/** Release 1.0.0, whose master polls APP_FETCH_URL with the HttpFetcher options in APP_FETCH_EXTRA. */
function runningBundle(file: string): string {
  const url = (relative: string) => JSON.stringify(pathToFileURL(path.join(root, relative)).href);
  fs.writeFileSync(
    file,
    `import http from 'node:http';
import { run } from ${url('dist/src/index.js')};
import { HttpFetcher } from ${url('dist/fetchers/index.js')};
const env = process.env;
run({
  address: '127.0.0.1:0',
  version: '1.0.0',
  minFetchInterval: 50,
  fetcher: new HttpFetcher({ url: env.APP_FETCH_URL, interval: 100, ...JSON.parse(env.APP_FETCH_EXTRA ?? '{}') }),
  onEvent: (event) => process.send?.({ event }),
  async program(state) {
    const server = http.createServer((req, res) => res.end(JSON.stringify({ pid: process.pid, id: state.id, version: state.version ?? null })));
    await state.listen(server);
  },
});
`,
  );
  return file;
}



const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

function failedWith(code: string): (event: Extract<OverseerEvent, { type: 'fetch-failed' }>) => boolean {
  return (event) => event.code === code;
}

test('a dripping release is cut by minDownloadRate; the child keeps serving and the release arrives once the drip stops', async () => {
  const bundle = runningBundle(path.join(tempDir(), 'app.mjs'));
  const installed = sha256(bundle);
  const releases = await releaseServer();
  releases.publish('/app.mjs', bundleSource('2.0.0'));
  releases.drip('/app.mjs', { every: 20 });
  const running = await master(bundle, {
    APP_FETCH_URL: releases.url('/app.mjs'),
    APP_FETCH_EXTRA: JSON.stringify({ minDownloadRate: 1000, downloadRateWindow: 300 }),
  });
  const cut = await running.waitFor('fetch-failed', failedWith('ERR_OVERSEER_DOWNLOAD_FAILED'), 10_000);
  assert.match(cut.error, /too slow.*HttpFetcher\.minDownloadRate/);
  assert.equal((await ask(running.port)).version, '1.0.0');
  assert.equal(sha256(bundle), installed, 'the installed bundle is untouched');

  releases.setMode('/app.mjs', 'normal');
  const applied = await running.waitFor('upgrade-applied', undefined, 20_000);
  assert.equal(applied.version, '2.0.0');
  assert.equal((await ask(running.port)).version, '2.0.0');
});

test('a redirect to another origin gets none of the configured headers', async () => {
  const bundle = runningBundle(path.join(tempDir(), 'app.mjs'));
  const installed = sha256(bundle);
  const releases = await releaseServer();
  const mirror = await releaseServer({ host: '::1' });
  const published = mirror.publish('/app.mjs', bundleSource('2.0.0'));
  releases.redirect('/app.mjs', published.url);
  const running = await master(bundle, {
    APP_FETCH_URL: releases.url('/app.mjs'),
    APP_FETCH_EXTRA: JSON.stringify({ headers: { 'x-api-key': 'k3y', 'private-token': 't0ken' } }),
  });
  await running.waitFor('upgrade-applied', undefined, 20_000);
  assert.ok(mirror.requests.length >= 2, 'the mirror was polled and downloaded from');
  for (const request of mirror.requests) {
    assert.equal(request.headers['x-api-key'], undefined, `x-api-key leaked to ${request.method} ${request.path}`);
    assert.equal(request.headers['private-token'], undefined, `private-token leaked to ${request.method} ${request.path}`);
  }
  assert.ok(releases.requests.every((request) => request.headers['x-api-key'] === 'k3y'), 'the origin still gets its key');
  assert.notEqual(sha256(bundle), installed);
});

test('an https: release redirected to http: is never fetched; the child keeps serving', async () => {
  const tls = {
    key: fs.readFileSync(path.join(root, 'test/fixtures/tls/key.pem')),
    cert: fs.readFileSync(path.join(root, 'test/fixtures/tls/cert.pem')),
  };
  const bundle = runningBundle(path.join(tempDir(), 'app.mjs'));
  const installed = sha256(bundle);
  const secure = await releaseServer({ tls });
  const plain = await releaseServer();
  const published = plain.publish('/app.mjs', bundleSource('2.0.0'));
  secure.redirect('/app.mjs', published.url);
  const running = await master(bundle, {
    // The master trusts the test certificate; NODE_EXTRA_CA_CERTS is read at start-up.
    NODE_EXTRA_CA_CERTS: path.join(root, 'test/fixtures/tls/cert.pem'),
    APP_FETCH_URL: secure.url('/app.mjs'),
  });
  const refused = await running.waitFor('fetch-failed', failedWith('ERR_OVERSEER_INSECURE_REDIRECT'), 10_000);
  assert.match(refused.error, /from https: to plain http:/);
  assert.ok(secure.requests.length >= 1, 'the master reached the https: server');
  assert.deepEqual(plain.requests, [], 'the http: host was never contacted');
  assert.equal((await ask(running.port)).version, '1.0.0');
  assert.equal(sha256(bundle), installed);
});
