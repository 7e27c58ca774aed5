import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { appFolder, cleanupCli, getJson, overseer, runCli } from '../helpers/cli.ts';
import { Load, type LoadResult } from '../helpers/load.ts';
import { execRelease, type ProbationMode } from '../helpers/probation-releases.ts';

after(cleanupCli);

const CONCURRENCY = 4;
const PROBE = { path: '/health', interval: 150, failures: 3 };

/** An app folder run as `node app.mjs` (no overseer code in it), its releases appearing at release/app.mjs. */
function setUp(probation: unknown) {
  const { dir, config } = appFolder('overseer-probation-cli-', execRelease('1.0.0'), () => ({
    fetch: { file: { path: 'release/app.mjs', interval: 100 } },
    minFetchInterval: 100,
    check: false,
    control: 'ctl.sock',
    terminateTimeout: 5000,
    ...(probation === undefined ? {} : { probation }),
  }));
  const publish = (mode: ProbationMode) => fs.writeFileSync(path.join(dir, 'release/app.mjs'), execRelease('2.0.0', mode));
  return { dir, config, bundle: path.join(dir, 'app.mjs'), publish };
}

async function started(run: ReturnType<typeof runCli>): Promise<number> {
  const [address] = (await run.waitFor('master-started')).addresses as string[];
  await run.waitFor('child-ready');
  return Number(address?.split(':').pop());
}

async function stopped(run: ReturnType<typeof runCli>): Promise<void> {
  run.master.kill('SIGTERM');
  assert.equal(await run.exited, 0, run.stderr());
}

async function ctlStatus(config: string): Promise<string> {
  return (await overseer('ctl', 'status', '-c', config)).stdout;
}

function assertNoFailures(result: LoadResult, crashed: boolean): void {
  if (!crashed) return assert.deepEqual(result.failures, []);
  assert.ok(result.failures.length <= CONCURRENCY, `at most the requests in flight on the crashing child fail: ${JSON.stringify(result.failures)}`);
  for (const failure of result.failures) assert.equal(failure.kind, 'reset', JSON.stringify(failure));
}

const failing: Array<[string, ProbationMode, string]> = [
  ['crashes 1 s after it became ready', 'crash-later', 'exit'],
  ['fails its health probe (its /health 404s from the start)', 'probe-404', 'probe'],
];

describe('probation under overseer run: exit and probe', () => {
  for (const [name, mode, cause] of failing) {
    test(`a release that ${name}: the previous build serves again, and a restarted master does not try it again`, async () => {
      const { config, bundle, publish } = setUp({ duration: 8000, probe: PROBE });
      const original = fs.readFileSync(bundle, 'utf8');
      const run = runCli(['-c', config]);
      const port = await started(run);
      const load = new Load({ port, keepAlive: true, concurrency: CONCURRENCY, maxMs: 60_000 });
      publish(mode);
      const begun = await run.waitFor('probation-started', 1, 30_000);
      assert.deepEqual(begun.watching, ['exit', 'probe'], 'an exec child reports nothing itself');
      const failed = await run.waitFor('probation-failed', 1, 30_000);
      assert.equal(failed.cause, cause);
      const back = await run.waitFor('upgrade-rolled-back', 1, 30_000);
      assert.equal(back.cause, cause);
      const answers = load.result.answers.length;
      while (load.result.answers.length < answers + 20) await new Promise((resolve) => setTimeout(resolve, 50));
      const result = await load.stop();
      assertNoFailures(result, mode === 'crash-later');
      assert.ok(result.answers.some((answer) => answer.version === '2.0.0'), 'the new build served during its probation');
      assert.equal((await getJson<{ version: string }>(port)).version, '1.0.0');
      assert.equal(fs.readFileSync(bundle, 'utf8'), original);
      assert.match(await ctlStatus(config), new RegExp(`upgrade +rolled back .*ERR_OVERSEER_ROLLED_BACK \\(${cause}\\)`));
      await stopped(run);
      // The failed release is still at the fetcher's path: a new master skips it.
      const again = runCli(['-c', config]);
      const portAgain = await started(again);
      await again.waitFor('upgrade-skipped', 1, 15_000);
      assert.equal(again.events('upgrade-skipped')[0]?.why, 'rejected-before');
      assert.deepEqual(again.events('upgrade-applied'), []);
      assert.equal((await getJson<{ version: string }>(portAgain)).version, '1.0.0');
      await stopped(again);
    });
  }

  test('a good release passes (flags set the probation), keeps .previous, and ctl status shows the time left', async () => {
    const { config, bundle, publish } = setUp(undefined);
    const original = fs.readFileSync(bundle, 'utf8');
    const run = runCli(['-c', config, '--probation', '2000', '--probe-path', '/health', '--probe-interval', '150']);
    const port = await started(run);
    const load = new Load({ port, keepAlive: true, concurrency: CONCURRENCY, maxMs: 60_000 });
    publish('good');
    const begun = await run.waitFor('probation-started', 1, 30_000);
    assert.equal(begun.durationMs, 2000);
    const status = await ctlStatus(config);
    if (run.events('probation-passed').length === 0) {
      assert.match(status, new RegExp(`pid ${begun.pid} .*on probation`));
      assert.match(status, new RegExp(`probation child ${begun.pid} on probation, \\d+s left`));
    }
    const passed = await run.waitFor('probation-passed', 1, 30_000);
    assert.equal(passed.pid, begun.pid);
    const result = await load.stop();
    assert.deepEqual(result.failures, []);
    assert.equal((await getJson<{ version: string }>(port)).version, '2.0.0');
    assert.equal(fs.readFileSync(`${bundle}.previous`, 'utf8'), original, '.previous is kept');
    assert.doesNotMatch(await ctlStatus(config), /on probation/);
    await stopped(run);
  });

  test('--no-probation turns it off; a bad probe path in the config file is refused at start', async () => {
    const { config, publish } = setUp({ probe: PROBE });
    const run = runCli(['-c', config, '--no-probation']);
    await started(run);
    publish('probe-404');
    await run.waitFor('upgrade-applied', 1, 30_000);
    assert.deepEqual(run.events('probation-started'), []);
    await stopped(run);
    const bad = setUp({ probe: { path: 'health' } });
    const refused = runCli(['-c', bad.config]);
    assert.equal(await refused.exited, 2);
    assert.match(refused.stderr(), /probation\.probe\.path.*"\/health"/);
  });
});
