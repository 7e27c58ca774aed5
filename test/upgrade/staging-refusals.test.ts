/**
 * A plain (not gzip) release of several MB, staged through write-body.ts by a real master from
 * a real release server, refused every way a hostile or broken source can make it: cut short,
 * too slow, over maxBundleSize, a wrong sha256. Each time nothing runs (the same child keeps
 * serving the old version), the bundle on disk is byte for byte the old one, and no temp file
 * is left beside it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { bundleSource, writeBundle } from '../helpers/bundles.ts';
import { master, releaseServer } from '../helpers/ended.ts';
import { ask } from '../helpers/load.ts';
import { tempDir, until, type RunningMaster } from '../helpers/master.ts';
import type { ReleaseServer } from '../../support/release-server.ts';

const MiB = 1024 * 1024;

/** Version 2.0.0 padded to `size` bytes with a comment: many gathered writes. */
function bigRelease(size = 6 * MiB): Buffer {
  const source = bundleSource('2.0.0');
  return Buffer.concat([Buffer.from(source), Buffer.from('\n//'), Buffer.alloc(size - source.length - 3, 'x')]);
}

const leftovers = (dir: string) => fs.readdirSync(dir).filter((name) => (name.includes('.overseer-') && !name.endsWith('.overseer-version')) || name.endsWith('.lock'));

interface Running {
  readonly running: RunningMaster;
  readonly server: ReleaseServer;
  readonly dir: string;
  readonly bundle: string;
  readonly original: Buffer;
  readonly servingPid: number;
}

async function start(env: Record<string, string> = {}): Promise<Running> {
  const dir = tempDir();
  const bundle = writeBundle(path.join(dir, 'app.mjs'), '1.0.0');
  const original = fs.readFileSync(bundle);
  const server = await releaseServer();
  server.publish('/app.mjs', original, { sha256: true });
  const running = await master(bundle, {
    APP_FETCH_URL: server.url('/app.mjs'),
    APP_FETCH_SHA256_URL: server.url('/app.mjs.sha256'),
    APP_OPTIONS: '{}',
    ...env,
  });
  await running.waitFor('upgrade-skipped');
  const serving = await ask(running.port);
  assert.equal(serving.version, '1.0.0');
  return { running, server, dir, bundle, original, servingPid: serving.pid };
}

/** Nothing ran: the same child serves 1.0.0, the bundle is unchanged, no temp is left. */
async function assertUntouched({ running, dir, bundle, original, servingPid }: Running): Promise<void> {
  const serving = await ask(running.port);
  assert.equal(serving.version, '1.0.0');
  assert.equal(serving.pid, servingPid, 'the serving child was never replaced');
  assert.ok(fs.readFileSync(bundle).equals(original), 'the bundle on disk is the old one');
  await until('no temp file beside the bundle', () => (leftovers(dir).length === 0 ? true : undefined));
  assert.equal(running.events.filter((event) => event.type === 'upgrade-applied').length, 0);
}

describe('a plain multi-MB release refused while staging', () => {
  test('cut short mid-body: the download fails, nothing runs', async () => {
    const setup = await start();
    setup.server.publish('/app.mjs', bigRelease(), { sha256: true });
    setup.server.setMode('/app.mjs', 'drop-mid-body');
    const failed = await setup.running.waitFor('fetch-failed');
    assert.equal(failed.code, 'ERR_OVERSEER_DOWNLOAD_FAILED');
    await assertUntouched(setup);
  });

  test('too slow: cut by minDownloadRate, naming the option, nothing runs', async () => {
    const setup = await start({ APP_FETCH_OPTIONS: JSON.stringify({ minDownloadRate: 64 * 1024, downloadRateWindow: 400 }) });
    setup.server.publish('/app.mjs', bigRelease(), { sha256: true });
    setup.server.drip('/app.mjs', { every: 20, bytes: 64 });
    const failed = await setup.running.waitFor('fetch-failed');
    assert.equal(failed.code, 'ERR_OVERSEER_DOWNLOAD_FAILED');
    assert.match(failed.error, /too slow.*HttpFetcher\.minDownloadRate/);
    await assertUntouched(setup);
  });

  test('over maxBundleSize: ERR_OVERSEER_TOO_LARGE, nothing runs', async () => {
    const setup = await start({ APP_OPTIONS: JSON.stringify({ maxBundleSize: 2 * MiB }) });
    setup.server.publish('/app.mjs', bigRelease(), { sha256: true });
    const rejected = await setup.running.waitFor('upgrade-rejected');
    assert.equal(rejected.code, 'ERR_OVERSEER_TOO_LARGE');
    await assertUntouched(setup);
  });

  test('a wrong sha256: the whole body staged, hashed and refused before anything runs', async () => {
    const setup = await start();
    const release = bigRelease();
    setup.server.publish('/app.mjs', release, { sha256: false });
    setup.server.publish('/app.mjs.sha256', `${'0'.repeat(64)}  app.mjs\n`);
    const rejected = await setup.running.waitFor('upgrade-rejected');
    assert.equal(rejected.code, 'ERR_OVERSEER_CHECKSUM_MISMATCH');
    const last = setup.running.events.findLast((event) => event.type === 'upgrade-progress');
    assert.ok(last?.type === 'upgrade-progress');
    assert.equal(last.received, release.length, 'every byte was received');
    await assertUntouched(setup);
  });
});
