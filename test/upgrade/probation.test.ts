import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { master, releaseServer } from '../helpers/ended.ts';
import { Load, ask, type LoadResult } from '../helpers/load.ts';
import { tempDir, until, type RunningMaster } from '../helpers/master.ts';
import { runRelease, type ProbationMode } from '../helpers/probation-releases.ts';
import type { ReleaseServer } from '../../support/release-server.ts';

/** Probation as these tests configure it: long enough that only a failure ends it early. */
const PROBATION = { duration: 8_000, minRequests: 12, probe: { path: '/health', interval: 150, failures: 3 } };
const CONCURRENCY = 4;

interface App {
  readonly bundle: string;
  readonly server: ReleaseServer;
  readonly env: Record<string, string>;
  start(): Promise<RunningMaster>;
}

async function app(probation: object = PROBATION): Promise<App> {
  const dir = tempDir('overseer-probation-');
  const bundle = path.join(dir, 'app.mjs');
  fs.writeFileSync(bundle, runRelease('1.0.0'));
  const server = await releaseServer();
  server.publish('/app.mjs', fs.readFileSync(bundle));
  const env = { APP_FETCH_URL: server.url('/app.mjs'), APP_OPTIONS: JSON.stringify({ probation, terminateTimeout: 5_000 }) };
  return {
    bundle, server, env,
    async start() {
      const started = await master(bundle, env, { cwd: dir });
      await started.waitFor('upgrade-skipped', (event) => event.why === 'same-sha256');
      return started;
    },
  };
}

/** Failures that are not the failed build's own 500s, and at most the requests in flight on a crashing child. */
function assertOnlyExpectedFailures(result: LoadResult, mode: ProbationMode): void {
  const others = result.failures.filter((failure) => !(failure.kind === 'status' && /^500 .*"version":"2\.0\.0"/.test(failure.detail)));
  if (mode === 'crash-later') {
    assert.ok(others.length <= CONCURRENCY, `at most the ${CONCURRENCY} requests in flight on the crashing child fail: ${JSON.stringify(others)}`);
    for (const failure of others) assert.equal(failure.kind, 'reset', JSON.stringify(failure));
  } else {
    assert.deepEqual(others, []);
  }
  if (mode !== 'errors-third') assert.equal(result.failures.length, others.length, 'no 500 at all');
}

const failing: Array<[string, ProbationMode, string]> = [
  ['crashes 1 s after it became ready', 'crash-later', 'exit'],
  ['answers 500 to a third of requests', 'errors-third', 'error-ratio'],
  ['fails its health probe (its /health 404s from the start)', 'probe-404', 'probe'],
  ['reports itself unhealthy', 'unhealthy', 'unhealthy'],
];

describe('probation under run(): a new build that boots fine and then fails is rolled back', () => {
  for (const [name, mode, cause] of failing) {
    test(`a release that ${name}: the previous build serves again, and it is not retried after a master restart`, async () => {
      const { bundle, server, start } = await app();
      const original = fs.readFileSync(bundle, 'utf8');
      const running = await start();
      const load = new Load({ port: running.port, keepAlive: true, concurrency: CONCURRENCY, maxMs: 60_000 });
      server.publish('/app.mjs', runRelease('2.0.0', mode));
      const started = await running.waitFor('probation-started', undefined, 30_000);
      assert.ok(started.watching.includes('exit') && started.watching.includes('responses') && started.watching.includes('probe'));
      const failed = await running.waitFor('probation-failed', undefined, 30_000);
      assert.equal(failed.cause, cause);
      const rolledBack = await running.waitFor('upgrade-rolled-back', undefined, 30_000);
      assert.equal(rolledBack.cause, cause);
      assert.deepEqual(rolledBack.evidence, failed.evidence);
      if (mode === 'crash-later') assert.equal(failed.evidence.exitCode, 7);
      if (mode === 'errors-third') {
        assert.ok((failed.evidence.errorRatio ?? 0) > 0.1, `ratio ${failed.evidence.errorRatio}`);
        assert.ok((failed.evidence.responses?.['5xx'] ?? 0) >= 1);
      }
      if (mode === 'probe-404') {
        assert.equal(failed.evidence.probeFailures, 3);
        assert.match(failed.evidence.probeError ?? '', /GET \/health answered 404/);
      }
      if (mode === 'unhealthy') assert.equal(failed.evidence.reason, 'the database pool is exhausted');
      // Ready-first: the previous build was ready before the failed child was told to drain.
      const rollback = running.events.findIndex((event) => event.type === 'handoff-started' && event.reason === 'rollback');
      assert.ok(rollback > 0, 'a rollback handoff ran');
      const backReady = running.events.findIndex((event, index) => index > rollback && event.type === 'child-ready');
      const failedDrain = running.events.findIndex((event) => event.type === 'child-draining' && event.pid === failed.pid);
      if (mode !== 'crash-later') assert.ok(backReady < failedDrain, 'the failed child drains only once the previous build is ready');
      // Some answers after the rollback, then the load stops.
      const after = load.result.answers.length;
      while (load.result.answers.length < after + 20) await new Promise((resolve) => setTimeout(resolve, 50));
      const result = await load.stop();
      assertOnlyExpectedFailures(result, mode);
      assert.equal((await ask(running.port)).version, '1.0.0');
      assert.equal(fs.readFileSync(bundle, 'utf8'), original, 'the bundle on disk is the previous build');
      assert.ok(result.answers.some((answer) => answer.version === '2.0.0'), 'the new build served during its probation');
      const persisted = fs.readFileSync(`${bundle}.overseer-rolled-back`, 'utf8');
      assert.match(persisted, new RegExp(rolledBack.sha256));
      // A new master on the same bundle, the failed release still published: it is not tried again.
      await running.stop();
      const next = await master(bundle, { APP_FETCH_URL: server.url('/app.mjs'), APP_OPTIONS: JSON.stringify({ probation: PROBATION }) });
      await next.waitFor('upgrade-skipped', (event) => event.why === 'rejected-before');
      assert.equal(next.events.some((event) => event.type === 'upgrade-applied'), false);
      assert.equal((await ask(next.port)).version, '1.0.0');
    });
  }

  test('a good release passes its probation, keeps .previous and serves on, with no request failed', async () => {
    const { bundle, server, start } = await app({ ...PROBATION, duration: 1_000 });
    const original = fs.readFileSync(bundle, 'utf8');
    const running = await start();
    const load = new Load({ port: running.port, keepAlive: true, concurrency: CONCURRENCY, maxMs: 60_000 });
    server.publish('/app.mjs', runRelease('2.0.0'));
    const passed = await running.waitFor('probation-passed', undefined, 30_000);
    assert.equal(passed.early, false);
    assert.ok((passed.evidence.responses?.['2xx'] ?? 0) > 0, 'the child counted its answers');
    assert.equal(passed.evidence.errorRatio, 0);
    const result = await load.stop();
    assert.deepEqual(result.failures, []);
    assert.equal((await ask(running.port)).version, '2.0.0');
    assert.equal(fs.readFileSync(`${bundle}.previous`, 'utf8'), original, '.previous is kept');
    assert.equal(fs.existsSync(`${bundle}.overseer-rolled-back`), false);
    assert.equal(running.events.some((event) => event.type === 'upgrade-rolled-back' || event.type === 'probation-failed'), false);
  });

  test('after a passed probation, a crash is the respawn policy\'s: the build stays', async () => {
    const dir = tempDir('overseer-probation-');
    const bundle = path.join(dir, 'app.mjs');
    fs.writeFileSync(bundle, runRelease('1.0.0'));
    const server = await releaseServer();
    server.publish('/app.mjs', fs.readFileSync(bundle));
    const running = await master(bundle, { APP_FETCH_URL: server.url('/app.mjs'), APP_OPTIONS: JSON.stringify({ probation: { duration: 1500 }, respawn: true }) });
    server.publish('/app.mjs', runRelease('2.0.0'));
    await running.waitFor('probation-passed', undefined, 30_000);
    const from = running.events.length;
    await ask(running.port, '127.0.0.1', '/exit').catch(() => {});
    await running.waitFor('respawn-scheduled', undefined, 30_000);
    await running.waitFor('handoff-completed', (event) => event.reason === 'respawn', 30_000);
    assert.equal((await ask(running.port)).version, '2.0.0');
    assert.equal(running.events.slice(from).some((event) => event.type === 'upgrade-rolled-back' || event.type === 'probation-failed'), false);
  });

  test('a rollback whose previous build was deleted by hand leaves the new child serving, and says so', async () => {
    const { bundle, server, start } = await app();
    const running = await start();
    server.publish('/app.mjs', runRelease('2.0.0', 'unhealthy'));
    await running.waitFor('probation-started', undefined, 30_000);
    fs.rmSync(`${bundle}.previous`);
    const failed = await running.waitFor('rollback-failed', undefined, 30_000);
    assert.match(failed.error, /no previous bundle/);
    await until('the loud warning', () => (/ROLLBACK FAILED/.test(running.output.stderr) ? true : undefined));
    assert.equal((await ask(running.port)).version, '2.0.0', 'the new build keeps serving');
    assert.equal(running.events.some((event) => event.type === 'upgrade-rolled-back'), false);
  });

  test('a shutdown during probation ends it cleanly: no verdict, no rollback, exit 0', async () => {
    const { server, start } = await app();
    const running = await start();
    server.publish('/app.mjs', runRelease('2.0.0'));
    await running.waitFor('probation-started', undefined, 30_000);
    running.process.kill('SIGTERM');
    assert.deepEqual(await running.exited, { code: 0, signal: null });
    assert.equal(running.events.some((event) => event.type.startsWith('probation-') && event.type !== 'probation-started'), false);
    assert.equal(running.events.some((event) => event.type === 'upgrade-rolled-back'), false);
    // The child was told to drain: the end of its probation is not sent to it (its channel may be gone).
    assert.doesNotMatch(running.output.stderr, /could not send/);
  });

  test('a restart asked for while a failing probation rolls back is not lost', async () => {
    const { server, start } = await app();
    const running = await start();
    server.publish('/app.mjs', runRelease('2.0.0', 'unhealthy'));
    await running.waitFor('probation-failed', undefined, 30_000);
    // The rollback handoff is under way (or about to be): a restart now is coalesced after it.
    running.process.kill('SIGUSR2');
    await running.waitFor('upgrade-rolled-back', undefined, 30_000);
    await running.waitFor('handoff-completed', (event) => event.reason === 'signal', 30_000);
    assert.equal((await ask(running.port)).version, '1.0.0');
  });

  test('polling goes on during a probation; a newer release supersedes it and gets its own', async () => {
    const { bundle, server, start } = await app({ ...PROBATION, duration: 60_000 });
    const running = await start();
    server.publish('/app.mjs', runRelease('2.0.0'));
    const first = await running.waitFor('probation-started', undefined, 30_000);
    server.publish('/app.mjs', runRelease('3.0.0', 'unhealthy'));
    const second = await running.waitFor('probation-started', (event) => event.pid !== first.pid, 30_000);
    await running.waitFor('upgrade-rolled-back', undefined, 30_000);
    assert.equal((await ask(running.port)).version, '2.0.0', 'the superseded build is the previous one');
    assert.match(fs.readFileSync(bundle, 'utf8'), /release 2\.0\.0/);
    assert.equal(running.events.some((event) => event.type === 'probation-failed' && event.pid === first.pid), false);
    assert.notEqual(second.sha256, first.sha256);
  });

  test('probation: false turns it off (no probation events)', async () => {
    const { server, start } = await app(false as unknown as object);
    const running = await start();
    server.publish('/app.mjs', runRelease('2.0.0', 'unhealthy'));
    await running.waitFor('upgrade-applied', undefined, 30_000);
    assert.equal((await ask(running.port)).version, '2.0.0');
    assert.equal(running.events.some((event) => event.type.startsWith('probation-')), false);
  });
});
