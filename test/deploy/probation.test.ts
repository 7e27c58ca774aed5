import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Load } from '../helpers/load.ts';
import { fixture, until } from '../helpers/master.ts';
import { archives, cleanUp, command, get, makeApp, stage, startDeploy, tempDir, versionIn, type Deploy } from './deploy-helpers.ts';

after(cleanUp);

const server = fs.readFileSync(fixture('probation-deploy-server.mjs'));

/** A release of the probation fixture in release/; `marker` files make it fail its probation one way. */
function stageProbation(app: string, version: string, marker?: 'CRASH_LATER' | 'PROBE_404'): void {
  const release = stage(app, version, { extra: marker ? { [marker]: '' } : {} });
  fs.writeFileSync(path.join(release, 'server.mjs'), server);
}

describe('overseer deploy: a release that fails its probation goes back to archive/ marked failed', () => {
  const dir = tempDir('overseer-deploy-probation-');
  // 3 s: room for the crash 1 s after ready to land inside it; the good release waits it out whole.
  const web = makeApp(dir, 'web', { version: 'v1', extra: { probation: { duration: 3000, probe: { path: '/health', interval: 150, failures: 3 } }, terminateTimeout: 5000 } });
  fs.writeFileSync(path.join(web, 'current', 'server.mjs'), server);
  let deploy: Deploy;
  let port = 0;

  before(async () => {
    deploy = startDeploy(dir);
    port = Number((await deploy.line(/web: listening on 127\.0\.0\.1:(\d+)/, 'web to listen'))[1]);
    await until('web ready', () => (deploy.stdout().includes('v1 ready') ? true : undefined));
  });
  after(async () => {
    if (deploy.process.exitCode === null) {
      deploy.process.kill('SIGKILL');
      await deploy.exited;
    }
  });

  const failing: Array<[string, 'CRASH_LATER' | 'PROBE_404', RegExp]> = [
    ['crashes 1 s after it became ready', 'CRASH_LATER', /failed its probation \(child \d+ exited \(code 7\) during its probation\)/],
    ['fails its health probe', 'PROBE_404', /failed its probation \(3 health probes in a row failed \(the last: GET \/health answered 404\)\)/],
  ];
  for (const [name, marker, message] of failing) {
    test(`a release that ${name}: current/ is restored and serves again, the failed one is archived`, async () => {
      const before = archives(web).length;
      stageProbation(web, `v2-${marker}`, marker);
      const load = new Load({ port, keepAlive: false, concurrency: 4, maxMs: 60_000 });
      const failed = await command(web, 'release');
      const answered = load.result.answers.length;
      await until('answers after the rollback', () => (load.result.answers.length > answered + 20 ? true : undefined));
      const result = await load.stop();
      assert.match(failed ?? '', /^ERR_OVERSEER_ROLLED_BACK: the release /);
      assert.match(failed ?? '', message);
      assert.match(failed ?? '', /the previous release is current again and serves; the failed one is archive\/\S+-failed/);
      if (marker === 'CRASH_LATER') {
        assert.ok(result.failures.length <= 4, `at most the requests in flight on the crashing child: ${JSON.stringify(result.failures)}`);
      } else {
        assert.deepEqual(result.failures, []);
      }
      assert.ok(result.answers.some((answer) => answer.version === `v2-${marker}`), 'the new release served during its probation');
      assert.equal((await get(port)).version, 'v1');
      assert.equal(versionIn(path.join(web, 'current')), 'v1');
      const failedArchive = archives(web).find((entry) => entry.endsWith('-failed') && versionIn(path.join(web, 'archive', entry)) === `v2-${marker}`);
      assert.ok(failedArchive, `the failed release is in archive/: ${archives(web).join(', ')}`);
      assert.equal(archives(web).length, before + 1);
      assert.match(deploy.stderr() + deploy.stdout(), /probation/);
    });
  }

  test('a good release passes its probation and stays current', async () => {
    stageProbation(web, 'v3');
    const load = new Load({ port, keepAlive: false, concurrency: 4, maxMs: 60_000 });
    assert.equal(await command(web, 'release'), undefined);
    const result = await load.stop();
    assert.deepEqual(result.failures, []);
    assert.equal((await get(port)).version, 'v3');
    assert.equal(versionIn(path.join(web, 'current')), 'v3');
  });
});
