/**
 * Upgrades do not fail silently: a failing poll, a failed handoff and a rollback each print a
 * warning by default, once per failure (again when it changes, and when it recovers), never
 * once per poll; noWarn silences them. Real masters, a real release server, stderr as printed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ChangeWarner } from '../../src/events.ts';
import { bundleSource, writeBundle } from '../helpers/bundles.ts';
import { ask } from '../helpers/load.ts';
import { tempDir, until, type RunningMaster } from '../helpers/master.ts';
import { master, releaseServer } from '../helpers/ended.ts';




const lines = (running: RunningMaster, pattern: RegExp) => running.output.stderr.split('\n').filter((line) => pattern.test(line));
const failures = (running: RunningMaster) => running.events.filter((event) => event.type === 'fetch-failed');
/** Waits until `count` more fetch-failed events than `seen` arrived. */
const moreFailures = (running: RunningMaster, seen: number, count: number) =>
  running.waitFor('fetch-failed', () => failures(running).length >= seen + count);
const POLL_FAILED = /warning: polling http for releases failed/;

describe('ChangeWarner', () => {
  test('warns the first failure, not its repeats (numbers aside); again when it changes; once when it recovers', () => {
    const said: string[] = [];
    const warner = new ChangeWarner({ debug: () => {}, warn: (message) => said.push(message) });
    warner.recovered('fine');
    warner.failed('a', 'A1');
    warner.failed('a', 'A2');
    warner.failed('b', 'B');
    warner.failed('b', 'B again');
    warner.recovered('works again');
    warner.recovered('still works');
    warner.failed('b', 'B after recovery');
    warner.failed('child 123 exited after 4096 bytes', 'C');
    warner.failed('child 456 exited after 8192 bytes', 'C with other numbers');
    assert.deepEqual(said, ['A1', 'B', 'works again', 'B after recovery', 'C']);
  });
});

describe('warnings by default', () => {
  test('a failing poll warns once, again when the failure changes, and when polling works again', async () => {
    const bundle = writeBundle(path.join(tempDir(), 'app.mjs'), '1.0.0');
    const releases = await releaseServer();
    releases.setMode('/app.mjs', 'status-500');
    const running = await master(bundle, { APP_FETCH_URL: releases.url('/app.mjs') });
    await moreFailures(running, 0, 4);
    await until('the first warning', () => (lines(running, POLL_FAILED).length > 0 ? true : undefined));
    assert.equal(lines(running, POLL_FAILED).length, 1, running.output.stderr);
    assert.match(lines(running, POLL_FAILED)[0] ?? '', /ERR_OVERSEER_FETCH_FAILED.*answered 500/);

    // Another failure: the release is gone (404).
    releases.setMode('/app.mjs', 'normal');
    await moreFailures(running, failures(running).length, 4);
    await until('the second warning', () => (lines(running, POLL_FAILED).length > 1 ? true : undefined));
    assert.equal(lines(running, POLL_FAILED).length, 2, running.output.stderr);
    assert.match(lines(running, POLL_FAILED)[1] ?? '', /answered 404/);

    // It recovers: said once, however many good polls follow.
    releases.publish('/app.mjs', fs.readFileSync(bundle));
    await running.waitFor('upgrade-skipped', (event) => event.why === 'same-sha256');
    await until('the recovery', () => (lines(running, /works again/).length > 0 ? true : undefined));
    const polls = releases.requests.length;
    await until('more good polls', () => (releases.requests.length >= polls + 4 ? true : undefined));
    assert.equal(lines(running, /warning: polling http for releases works again/).length, 1, running.output.stderr);
    assert.equal(lines(running, POLL_FAILED).length, 2);
  });

  test('a failed handoff warns (once for the same failure in new children) and says when handoffs work again', async () => {
    const bundle = writeBundle(path.join(tempDir(), 'app.mjs'), '1.0.0');
    const running = await master(bundle, { APP_OPTIONS: JSON.stringify({ readyTimeout: 3000 }) });
    const good = fs.readFileSync(bundle);
    fs.writeFileSync(bundle, bundleSource('1.0.1', 'crash-in-program'));
    const failed = () => running.events.filter((event) => event.type === 'handoff-failed');
    for (const count of [1, 2, 3]) {
      running.process.kill('SIGUSR2');
      await running.waitFor('handoff-failed', () => failed().length >= count);
    }
    const pids = new Set(failed().map((event) => event.pid));
    assert.equal(pids.size, 3, 'three children failed, each with its own pid');
    const HANDOFF_FAILED = /warning: a handoff \(signal\) failed \(ERR_OVERSEER_CHILD_FAILED\): child \d+ failed in its program: this release crashes in program/;
    await until('the handoff warning', () => (lines(running, HANDOFF_FAILED).length > 0 ? true : undefined));
    assert.equal(lines(running, /a handoff .* failed/).length, 1, running.output.stderr);
    assert.equal((await ask(running.port)).version, '1.0.0', 'the old child keeps serving');

    fs.writeFileSync(bundle, good);
    running.process.kill('SIGUSR2');
    await running.waitFor('handoff-completed', (event) => event.reason === 'signal');
    await until('the recovery', () => (lines(running, /warning: handoffs work again/).length > 0 ? true : undefined));
  });

  test('a release that fails its handoff and is rolled back warns with the reason', async () => {
    const bundle = writeBundle(path.join(tempDir(), 'app.mjs'), '1.0.0');
    const releases = await releaseServer();
    releases.publish('/app.mjs', fs.readFileSync(bundle));
    const running = await master(bundle, { APP_FETCH_URL: releases.url('/app.mjs'), APP_OPTIONS: JSON.stringify({ readyTimeout: 3000 }) });
    releases.publish('/app.mjs', bundleSource('2.0.0', 'crash-in-program'));
    const rolledBack = await running.waitFor('upgrade-rolled-back');
    await until('the rollback warning', () => (lines(running, /warning: rolled back/).length > 0 ? true : undefined));
    const [warning] = lines(running, /warning: rolled back/);
    assert.ok(warning?.includes(releases.url('/app.mjs')) && warning.includes(rolledBack.sha256), warning);
    assert.match(warning ?? '', /crashes in program; the previous release keeps serving/);
    assert.equal(lines(running, /warning: a handoff \(upgrade\) failed/).length, 1, running.output.stderr);
  });
});

test('noWarn silences them all (failing polls, failed handoffs, rollbacks), which a master beside it prints', async () => {
  const releases = await releaseServer();
  releases.setMode('/app.mjs', 'status-500');
  const start = (options: object) => master(writeBundle(path.join(tempDir(), 'app.mjs'), '1.0.0'), {
    APP_FETCH_URL: releases.url('/app.mjs'), APP_OPTIONS: JSON.stringify({ readyTimeout: 3000, ...options }),
  });
  const [quiet, loud] = await Promise.all([start({ noWarn: true }), start({})]);
  await Promise.all([moreFailures(quiet, 0, 3), moreFailures(loud, 0, 3)]);
  releases.setMode('/app.mjs', 'normal');
  releases.publish('/app.mjs', bundleSource('2.0.0', 'crash-in-program'));
  await Promise.all([quiet.waitFor('upgrade-rolled-back'), loud.waitFor('upgrade-rolled-back')]);
  // The recovery is said when the poll that brought the release ends, which may be after the rollback's warning.
  await until("the loud master's warnings", () => (lines(loud, /warning: rolled back/).length > 0 && lines(loud, /works again/).length > 0 ? true : undefined));
  for (const pattern of [POLL_FAILED, /warning: a handoff \(upgrade\) failed/, /warning: polling http for releases works again/]) {
    assert.equal(lines(loud, pattern).length, 1, `${pattern}: ${loud.output.stderr}`);
  }
  await quiet.stop();
  assert.doesNotMatch(quiet.output.stderr, /warning/, quiet.output.stderr);
});
