import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { createMinisignKey } from '../../support/minisign.ts';
import { cleanupCli, getJson, overseer, runCli, scratch } from '../helpers/cli.ts';
import { fixture, until } from '../helpers/master.ts';
import { publish, type Put } from '../../support/manifest-publish.ts';

after(cleanupCli);

test('overseer run: "fetch": { "manifest": … } in the config file; ctl status shows the manifest, the bucket and why', async () => {
  const key = createMinisignKey();
  const dir = scratch('overseer-manifest-cli-');
  const v1 = fs.readFileSync(fixture('ctl-server.mjs'), 'utf8');
  const v2 = v1.replace("VERSION = 'v1'", "VERSION = 'v2'");
  fs.writeFileSync(path.join(dir, 'app.mjs'), v1);
  fs.mkdirSync(path.join(dir, 'releases'));
  const put: Put = (p, body) => fs.writeFileSync(path.join(dir, 'releases', p), body);
  await publish(put, key, 1, { stable: [{ version: '1.0.0', body: v1 }, { version: '2.0.0', body: v2, rollout: 0 }] });
  fs.writeFileSync(path.join(dir, 'key.pub'), key.publicKeyFile);
  const config = path.join(dir, 'overseer.config.json');
  fs.writeFileSync(config, JSON.stringify({
    listeners: [{ name: 'web', address: '127.0.0.1:0' }],
    command: [process.execPath, 'app.mjs'],
    bundle: 'app.mjs',
    control: 'ctl.sock',
    check: false,
    minFetchInterval: 100,
    verify: { publicKey: ['@key.pub'] },
    fetch: { manifest: { file: { path: 'releases/manifest.json' }, instanceId: 'box-1', interval: 600000 } },
  }));
  const run = runCli(['-c', config], dir);
  const [address] = (await run.waitFor('master-started')).addresses as string[];
  await until('the control socket', () => (fs.existsSync(path.join(dir, 'ctl.sock')) ? true : undefined));
  // The first poll is jittered (up to 20 % of ten minutes); ctl upgrade polls now.
  assert.equal((await overseer('ctl', 'upgrade', '-c', config)).code, 0);
  await run.waitFor('manifest-accepted');
  const status = await overseer('ctl', 'status', '-c', config);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /manifest +sequence 1, expires \S+ from .*releases\/manifest\.json/);
  assert.match(status.stdout, /instance +box-1, channel stable/);
  assert.match(status.stdout, /rollout +2\.0\.0 at 0 %, this instance's bucket \d+\.\d\d/);
  assert.match(status.stdout, /release +stay: running 1\.0\.0, .*2\.0\.0 is rolled out to 0 %/);

  await publish(put, key, 2, { stable: [{ version: '1.0.0', body: v1 }, { version: '2.0.0', body: v2, rollout: 100 }] });
  assert.equal((await overseer('ctl', 'upgrade', '-c', config)).code, 0);
  const applied = await run.waitFor('upgrade-applied', 1, 20_000);
  assert.equal(applied.version, '2.0.0');
  await run.waitFor('child-ready', 2, 20_000);
  assert.equal((await getJson<{ version: string }>(Number(address?.split(':').pop()))).version, 'v2');
  const json = JSON.parse((await overseer('ctl', 'status', '--json', '-c', config)).stdout) as { manifest: { sequence: number; instanceId: string } };
  assert.equal(json.manifest.sequence, 2);
  assert.equal(json.manifest.instanceId, 'box-1');
  assert.equal((await overseer('ctl', 'stop', '-c', config)).code, 0);
  assert.equal(await run.exited, 0);
});
