import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { bundleSource, writeBundle } from '../helpers/bundles.ts';
import { ask } from '../helpers/load.ts';
import { tempDir, until, type RunningMaster } from '../helpers/master.ts';
import { createMinisignKey } from '../../support/minisign.ts';
import { master, releaseServer } from '../helpers/ended.ts';



/** A master whose app reads its options from APP_OPTIONS (none unless given). */
function faultyMaster(bundle: string, env: Record<string, string>, wait = true): Promise<RunningMaster> {
  return master(bundle, { APP_OPTIONS: '{}', ...env }, { noWait: !wait });
}

function memory(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

// The version floor (`<bundle>.overseer-version`) is state, not a leftover.
const leftovers = (dir: string) => fs.readdirSync(dir).filter((name) => (name.includes('.overseer-') && !name.endsWith('.overseer-version')) || name.endsWith('.lock'));

describe('upgrade faults', () => {
  test('a release with no signature is refused when verify.publicKey is set', async () => {
    const dir = tempDir();
    const bundle = writeBundle(path.join(dir, 'app.mjs'), '1.0.0');
    const releases = await releaseServer();
    releases.publish('/app.mjs', bundleSource('2.0.0'));
    const key = createMinisignKey();
    const running = await faultyMaster(bundle, { APP_FETCH_URL: releases.url('/app.mjs'), APP_OPTIONS: JSON.stringify({ verify: { publicKey: key.publicKey } }) });
    assert.equal((await running.waitFor('upgrade-rejected')).code, 'ERR_OVERSEER_SIGNATURE_MISSING');
    assert.equal((await ask(running.port)).version, '1.0.0');
  });

  test('a release over maxBundleSize is refused before it fills the disk, and not retried', async () => {
    const dir = tempDir();
    const bundle = writeBundle(path.join(dir, 'app.mjs'), '1.0.0');
    const releases = await releaseServer();
    releases.publish('/app.mjs.gz', Buffer.alloc(4 * 1024 * 1024, 'a').toString() + bundleSource('2.0.0'), { gzip: true });
    const running = await faultyMaster(bundle, { APP_FETCH_URL: releases.url('/app.mjs.gz'), APP_OPTIONS: JSON.stringify({ maxBundleSize: 1024 * 1024 }) });
    assert.equal((await running.waitFor('upgrade-rejected')).code, 'ERR_OVERSEER_TOO_LARGE');
    const downloads = releases.requests.filter((request) => request.method === 'GET').length;
    const polls = releases.requests.length;
    await until('more polls', () => (releases.requests.length >= polls + 3 ? true : undefined), 10_000, () => `${running.report()}\n${releases.log()}`);
    assert.equal(releases.requests.filter((request) => request.method === 'GET').length, downloads);
    assert.deepEqual(leftovers(dir), []);
  });

  test('downloading a 200 MB release grows the master\'s RSS by less than 32 MB', async (t) => {
    const dir = tempDir();
    const bundle = writeBundle(path.join(dir, 'app.mjs'), '1.0.0');
    const releases = await releaseServer();
    releases.publish('/app.mjs.sha256', `${'f'.repeat(64)}  app.mjs\n`);
    const running = await faultyMaster(bundle, { APP_FETCH_URL: releases.url('/app.mjs'), APP_FETCH_SHA256_URL: releases.url('/app.mjs.sha256'), APP_FETCH_INTERVAL: '60000' });
    // The fetcher has polled once (nothing there yet): undici is loaded, so its cost is in the baseline.
    await running.waitFor('fetch-failed');
    // Peak RSS counts from here (Linux: writing 5 to clear_refs resets VmHWM).
    fs.writeFileSync(`/proc/${running.pid}/clear_refs`, '5');
    const before = memory(running.pid);
    releases.publishGenerated('/app.mjs', 200 * 1024 * 1024, { seed: 7 });
    process.kill(running.pid, 0);
    const rejected = await running.waitFor('upgrade-rejected', undefined, 60_000);
    assert.equal(rejected.code, 'ERR_OVERSEER_CHECKSUM_MISMATCH', 'the whole 200 MB went through the pipeline');
    const after = memory(running.pid);
    const growth = after.peak - before.rss;
    t.diagnostic(`master RSS ${(before.rss / 1048576).toFixed(1)} MB, peak during the download +${(growth / 1048576).toFixed(1)} MB`);
    assert.ok(growth < 32 * 1024 * 1024, `master RSS grew by ${(growth / 1048576).toFixed(1)} MB`);
    assert.deepEqual(leftovers(dir), []);
  });

  test('two masters swapping the same bundle at once: both land, the file is whole, no lock is left', async () => {
    const dir = tempDir();
    const bundle = writeBundle(path.join(dir, 'app.mjs'), '1.0.0');
    const releases = await releaseServer();
    const [a, b] = await Promise.all([
      master(bundle, { APP_FETCH_URL: releases.url('/app.mjs') }),
      master(bundle, { APP_FETCH_URL: releases.url('/app.mjs') }),
    ]);
    releases.publish('/app.mjs', bundleSource('2.0.0'));
    await Promise.all([a.waitFor('upgrade-applied'), b.waitFor('upgrade-applied')]);
    assert.equal((await ask(a.port)).version, '2.0.0');
    assert.equal((await ask(b.port)).version, '2.0.0');
    assert.equal(fs.readFileSync(bundle, 'utf8'), bundleSource('2.0.0'));
    assert.deepEqual(leftovers(dir), []);
  });

  test('kill -9 of the master at any moment of an upgrade: the bundle boots after restart, no lock or temp file stays', async () => {
    const dir = tempDir();
    const bundle = writeBundle(path.join(dir, 'app.mjs'), '1.0.0');
    const releases = await releaseServer();
    const versions = ['1.0.0'];
    for (let round = 0; round < 6; round++) {
      const version = `2.0.${round}`;
      versions.push(version);
      releases.publish('/app.mjs', bundleSource(version));
      const running = await faultyMaster(bundle, { APP_FETCH_URL: releases.url('/app.mjs') }, false);
      await running.waitFor('upgrade-available');
      // Land the kill at a different point of download, check and swap each round.
      await new Promise((resolve) => setTimeout(resolve, round * 25));
      running.process.kill('SIGKILL');
      await running.exited;
      const content = fs.readFileSync(bundle, 'utf8');
      assert.ok(versions.some((item) => content === bundleSource(item)), `round ${round}: the bundle is whole`);
      // A new master with the same config boots whatever is there and clears the temp files.
      const next = await faultyMaster(bundle, { APP_FETCH_URL: releases.url('/app.mjs') });
      const answer = await ask(next.port);
      assert.ok(versions.includes(answer.version ?? ''), `round ${round}: boots ${answer.version}`);
      await next.stop();
      assert.deepEqual(leftovers(dir).filter((name) => !name.endsWith('.lock')), [], `round ${round}: no temp file`);
    }
    // Whatever lock a kill left behind goes stale: the next release still lands. Nobody refreshes
    // such a lock: dated back past its stale time (10 s) rather than waited out.
    const past = new Date(Date.now() - 60_000);
    for (const name of leftovers(dir).filter((item) => item.endsWith('.lock'))) fs.utimesSync(path.join(dir, name), past, past);
    releases.publish('/app.mjs', bundleSource('3.0.0'));
    const last = await faultyMaster(bundle, { APP_FETCH_URL: releases.url('/app.mjs') });
    await last.waitFor('upgrade-applied', (event) => event.version === '3.0.0', 30_000);
    assert.equal((await ask(last.port)).version, '3.0.0');
    await last.stop();
    assert.deepEqual(leftovers(dir), []);
  });
});
