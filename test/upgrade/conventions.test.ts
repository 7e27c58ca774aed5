/**
 * The documented conventions, seen from a real master: with verify.publicKey set, a release
 * signed as docs/signing.md says (`<asset>.minisig` next to it, no signatureUrl) is taken; and a
 * server without ETags (Python's http.server) cannot hide a release behind a Last-Modified that
 * an older release of the same size had (racy timestamps).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createMinisignKey } from '../../support/minisign.ts';
import { bundleSource, writeBundle } from '../helpers/bundles.ts';
import { ask } from '../helpers/load.ts';
import { tempDir, until, type RunningMaster } from '../helpers/master.ts';
import { hasPython, startPythonServer } from '../fetchers/python-http-server.ts';
import { master, onDone, releaseServer } from '../helpers/ended.ts';




/** The first upgrade outcome: applied, or why not. */
async function outcome(running: RunningMaster, from = 0): Promise<string> {
  return until('an upgrade outcome', () => {
    for (const event of running.events.slice(from)) {
      if (event.type === 'upgrade-applied') return `applied ${event.version}`;
      if (event.type === 'upgrade-rejected') return `rejected ${event.code}: ${event.error}`;
    }
    return undefined;
  }, 20_000);
}

test('with verify.publicKey set, <asset>.minisig next to the release is read without signatureUrl, and the signed release is taken', async () => {
  const key = createMinisignKey();
  const bundle = writeBundle(path.join(tempDir(), 'app.mjs'), '1.0.0');
  const releases = await releaseServer();
  const v2 = bundleSource('2.0.0');
  // As docs/signing.md says: the signature first, then the release.
  releases.publish('/app.mjs.minisig', key.sign(Buffer.from(v2), 'version:2.0.0'));
  releases.publish('/app.mjs', v2);
  const running = await master(bundle, { APP_FETCH_URL: releases.url('/app.mjs'), APP_OPTIONS: JSON.stringify({ verify: { publicKey: key.publicKeyFile } }) });
  assert.equal(await outcome(running), 'applied 2.0.0');
  assert.equal((await ask(running.port)).version, '2.0.0');
  assert.equal(releases.requests.filter((request) => request.path.endsWith('.sha256')).length, 0, 'verify.sha256 is optional: no .sha256 is asked for');

  // No .minisig published (a 404): the release is refused for the missing signature, not a failed poll.
  const seen = running.events.length;
  releases.unpublish('/app.mjs.minisig');
  releases.publish('/app.mjs', bundleSource('3.0.0'));
  assert.match(await outcome(running, seen), /^rejected ERR_OVERSEER_SIGNATURE_MISSING: .*publish <asset>\.minisig/);
  assert.equal(running.events.slice(seen).filter((event) => event.type === 'fetch-failed').length, 0);
});

test("with verify.sha256 'required', <asset>.sha256 next to the release is read without sha256Url; with no key, no .minisig is asked for", async () => {
  const bundle = writeBundle(path.join(tempDir(), 'app.mjs'), '1.0.0');
  const releases = await releaseServer();
  releases.publish('/app.mjs', bundleSource('2.0.0'), { sha256: true });
  const running = await master(bundle, { APP_FETCH_URL: releases.url('/app.mjs'), APP_OPTIONS: JSON.stringify({ verify: { sha256: 'required' } }) });
  assert.equal(await outcome(running), 'applied 2.0.0');
  const polls = releases.requests.length;
  await until('more polls', () => (releases.requests.length >= polls + 3 ? true : undefined));
  assert.deepEqual(releases.requests.filter((request) => request.path.endsWith('.minisig')), []);
});

test(
  "Python's http.server (no ETag): a release of the same size under the same Last-Modified second as the installed one is still taken",
  { skip: !hasPython && 'python3 is not installed' },
  async () => {
    const dir = tempDir();
    const bundle = writeBundle(path.join(dir, 'app.mjs'), '1.0.0');
    const published = path.join(dir, 'www', 'app.mjs');
    fs.mkdirSync(path.dirname(published));
    const v2 = bundleSource('2.0.0');
    const v3 = bundleSource('3.0.0');
    assert.equal(v2.length, v3.length, 'the same size, so only Last-Modified could tell them apart');
    // One whole second for both releases, as when v3 is published within v2's second. It lies
    // ahead of the server's clock (as a clock a little fast would), so the race stays open for
    // the whole test instead of for the two seconds a real one lasts.
    const second = new Date(Math.floor(Date.now() / 1000) * 1000 + 30_000);
    // Written aside and renamed in, so no poll sees the bytes before their timestamp is set.
    const publish = (source: string) => {
      fs.writeFileSync(`${published}.tmp`, source);
      fs.utimesSync(`${published}.tmp`, second, second);
      fs.renameSync(`${published}.tmp`, published);
    };
    publish(v2);
    const python = await startPythonServer(path.dirname(published));
    onDone(() => python.close());
    const running = await master(bundle, { APP_FETCH_URL: `${python.origin}/app.mjs` });
    assert.equal(await outcome(running), 'applied 2.0.0');

    const seen = running.events.length;
    publish(v3);
    assert.equal(await outcome(running, seen), 'applied 3.0.0');
    assert.equal((await ask(running.port)).version, '3.0.0');
  },
);
