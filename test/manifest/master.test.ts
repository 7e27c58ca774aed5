import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createMinisignKey } from '../../support/minisign.ts';
import { master, releaseServer } from '../helpers/ended.ts';
import { ask, Load } from '../helpers/load.ts';
import { tempDir } from '../helpers/master.ts';
import { versionFile } from '../../src/upgrade/version-floor.ts';
import { manifestBundle } from './bundles.ts';
import { publish, type Put } from '../../support/manifest-publish.ts';

test('a real master: upgrade through the manifest, pull-back through a ready-first handoff under load, expiry keeps it serving', async () => {
  const key = createMinisignKey();
  const server = await releaseServer();
  const put: Put = (p, body) => void server.publish(`/app/${p}`, body);
  const v1 = manifestBundle('1.0.0');
  const v2 = manifestBundle('1.1.0');
  await publish(put, key, 1, { stable: [{ version: '1.0.0', body: v1 }] });
  const bundle = path.join(tempDir('overseer-manifest-master-'), 'app.mjs');
  fs.writeFileSync(bundle, v1);
  const running = await master(bundle, {
    APP_PUBLIC_KEYS: JSON.stringify([key.publicKey]),
    APP_MANIFEST: JSON.stringify({ http: { url: server.url('/app/manifest.json') }, interval: 100, instanceId: 'test-1' }),
  });
  await running.waitFor('manifest-accepted', (event) => event.sequence === 1 && event.action === 'stay');
  const load = new Load({ port: running.port, keepAlive: true, concurrency: 4 });

  await publish(put, key, 2, { stable: [{ version: '1.0.0', body: v1 }, { version: '1.1.0', body: v2 }] });
  await running.waitFor('upgrade-applied', (event) => event.version === '1.1.0', 30_000);
  await running.waitFor('handoff-completed', () => running.events.filter((e) => e.type === 'handoff-completed').length >= 1);
  assert.equal((await ask(running.port)).version, '1.1.0');
  assert.equal(fs.readFileSync(versionFile(bundle), 'utf8'), '1.1.0\n');

  // Pull 1.1.0: the instance goes back to 1.0.0 (lower: the one sanctioned downgrade).
  await publish(put, key, 3, { stable: [{ version: '1.0.0', body: v1 }, { version: '1.1.0', body: v2, pulled: true }] });
  await running.waitFor('manifest-accepted', (event) => event.sequence === 3 && event.action === 'pull-back');
  await running.waitFor('upgrade-applied', (event) => event.version === '1.0.0', 30_000);
  await running.waitFor('handoff-completed', () => running.events.filter((e) => e.type === 'handoff-completed').length >= 2);
  assert.equal((await ask(running.port)).version, '1.0.0');
  assert.equal(fs.readFileSync(versionFile(bundle), 'utf8'), '1.0.0\n', 'the floor follows exactly this downgrade');
  assert.equal(fs.readFileSync(`${bundle}.overseer-manifest`, 'utf8'), '{"sequence":3}\n');

  // An expired manifest (even a newer one) is refused; the running build keeps serving.
  await publish(put, key, 4, { stable: [{ version: '1.0.0', body: v1 }, { version: '1.1.0', body: v2 }] }, { expires: '2021-01-01T00:00:00Z' });
  const refused = await running.waitFor('manifest-refused', (event) => event.code === 'ERR_OVERSEER_MANIFEST_EXPIRED');
  assert.equal(refused.field, 'expires');
  const result = await load.stop();
  assert.deepEqual(result.failures, [], 'no request failed through upgrade and pull-back');
  assert.deepEqual(new Set(result.answers.map((a) => a.version)), new Set(['1.0.0', '1.1.0']));
  assert.equal((await ask(running.port)).version, '1.0.0');
  assert.ok(!running.events.some((e) => e.type === 'upgrade-rejected'), 'nothing was downloaded and refused');
});
