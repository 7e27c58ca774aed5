/**
 * overseer/testing: an app under a real master from a test suite — restart, publish a release,
 * events, checkHandoffs — and nothing left running or left on disk once it is stopped.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { checkHandoffs, startApp, type TestApp } from '../../src/testing/index.ts';
import { fixture, isAlive } from '../helpers/master.ts';

const apps: TestApp[] = [];
after(async () => {
  for (const app of apps) await app.stop();
});

async function started(options: Parameters<typeof startApp>[0]): Promise<TestApp> {
  const app = await startApp(options);
  apps.push(app);
  return app;
}

async function get(app: TestApp): Promise<{ pid: number; version: string | null }> {
  const response = await fetch(app.url);
  return (await response.json()) as { pid: number; version: string | null };
}

/** Every process the app's master started, and the master, are gone. */
function assertNothingRunning(app: TestApp): void {
  assert.equal(isAlive(app.pid), false, `master ${app.pid} still runs`);
  for (const event of app.events) {
    if (event.type === 'child-forked') assert.equal(isAlive(event.pid), false, `child ${event.pid} still runs`);
  }
}

test('startApp runs a run() app on a free port; restart hands off; stop ends the master and every child', async () => {
  const app = await started({ script: fixture('app.mjs') });
  assert.ok(app.port > 0);
  const first = await get(app);
  assert.equal(first.pid, app.servingPid());
  const handoff = await app.restart();
  assert.equal(handoff.from, first.pid);
  assert.equal((await get(app)).pid, handoff.to);
  assert.ok(app.events.some((event) => event.type === 'master-started'));
  const exit = await app.stop();
  assert.equal(exit.code, 0);
  assertNothingRunning(app);
});

test('checkHandoffs returns the report of overseer check: 0 failed across the handoffs', async () => {
  const app = await started({ script: fixture('app.mjs') });
  const report = await app.checkHandoffs({ handoffs: 1, durationMs: 300, rate: 200 });
  assert.equal(report.failed, 0, JSON.stringify(report.diagnoses));
  assert.equal(report.ok, true);
  assert.equal(report.runs.length, 2);
  assert.equal(report.runs.flatMap((run) => run.handoffs).filter((handoff) => handoff.ok).length, 2);
  await app.stop();
  assertNothingRunning(app);
});

test('checkHandoffs on its own finds a bad drain and stops what it started', async () => {
  // Both runs: an idle close right at the exit names the fault only when the run without
  // keep-alive lost nothing there (diagnose.ts).
  const report = await checkHandoffs({ script: fixture('check/plain-close.mjs'), handoffs: 3, durationMs: 300, rate: 1000, keepAlive: [true, false] });
  assert.equal(report.ok, false);
  assert.ok(report.diagnoses.some((diagnosis) => diagnosis.code === 'reset-after-stop'), JSON.stringify(report.diagnoses.map((each) => each.code)));
  for (const handoff of report.runs.flatMap((run) => run.handoffs)) {
    for (const pid of [handoff.oldPid, handoff.newPid]) if (pid !== undefined) assert.equal(isAlive(pid), false);
  }
});

test('publish sends a release through the local release file; stop removes the copy and what upgrades left', async () => {
  const script = fixture('check/versioned.mjs');
  const before = fs.readdirSync(path.dirname(script)).sort();
  const app = await started({ script, releases: true });
  assert.equal((await get(app)).version, '1.0.0');
  const applied = await app.publish(fs.readFileSync(script, 'utf8').replace("'1.0.0'", "'2.0.0'"));
  assert.equal(applied.version, '2.0.0');
  assert.equal((await get(app)).version, '2.0.0');
  // A downgrade is refused, and says so.
  await assert.rejects(app.publish(fs.readFileSync(script, 'utf8')), /not installed: upgrade-rejected/);
  assert.equal((await get(app)).version, '2.0.0');
  await app.stop();
  assertNothingRunning(app);
  assert.deepEqual(fs.readdirSync(path.dirname(script)).sort(), before);
  assert.equal(fs.readFileSync(script, 'utf8').includes("'1.0.0'"), true, 'the app itself is never replaced');
});

test('a command under overseer run: started, restarted, stopped', async () => {
  const app = await started({ command: ['python3', fixture('fd-server.py')] });
  const first = await get(app);
  const handoff = await app.restart();
  assert.equal(handoff.from, first.pid);
  assert.notEqual((await get(app)).pid, first.pid);
  await app.stop();
  assertNothingRunning(app);
});

test('mistakes are named', async () => {
  await assert.rejects(startApp({}), /a script \(a run\(\) app\) or a command/);
  await assert.rejects(startApp({ command: ['python3', 'x.py'], releases: true }), /releases: true is for run\(\) apps/);
  const app = await started({ script: fixture('app.mjs') });
  await assert.rejects(app.publish('x'), /needs startApp\(\{ script, releases: true \}\)/);
  await app.stop();
});

test('slow readiness is a warning: named, and the check still passes', async () => {
  const report = await checkHandoffs({ script: fixture('check/slow-ready.mjs'), handoffs: 1, durationMs: 200, rate: 50, keepAlive: [true] });
  assert.equal(report.failed, 0, JSON.stringify(report.diagnoses));
  const slow = report.diagnoses.find((diagnosis) => diagnosis.code === 'slow-ready');
  assert.ok(slow, JSON.stringify(report.diagnoses.map((each) => each.code)));
  assert.equal(slow.severity, 'warning');
  assert.equal(report.ok, true);
});
