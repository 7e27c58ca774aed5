/**
 * How `overseer check` turns its argv into what it starts: overseer run's flags pass through
 * (checked by overseer run's own loadRunSettings), listeners move to a free loopback port,
 * the program's deadlines are capped, and a run() app takes no `overseer run` option.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { CHECK_TIMEOUT_CAP, planCheck } from '../../src/check/cli.ts';
import { fixture, tempDir } from '../helpers/master.ts';

const dir = tempDir('overseer-check-plan-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a run() app: its path, check options, deadlines capped unless given', async () => {
  const plan = await planCheck(['--handoffs', '3', '--rate', '50', '--url', '/health', '--json', fixture('app.mjs')]);
  assert.ok(plan !== 'help');
  assert.equal(plan.spec.kind, 'app');
  assert.equal(plan.json, true);
  assert.deepEqual({ ...plan.options }, { handoffs: 3, rate: 50, path: '/health', terminateTimeout: CHECK_TIMEOUT_CAP, readyTimeout: CHECK_TIMEOUT_CAP });
  assert.deepEqual(plan.spec.kind === 'app' && plan.spec.overrides, { maxTerminateTimeout: CHECK_TIMEOUT_CAP, maxReadyTimeout: CHECK_TIMEOUT_CAP });
  const exact = await planCheck(['--terminate-timeout', '1500', fixture('app.mjs')]);
  assert.ok(exact !== 'help' && exact.spec.kind === 'app');
  assert.equal(exact.spec.overrides.terminateTimeout, 1500);
  assert.equal(exact.options.terminateTimeout, 1500);
});

test('a command: run flags pass through, every listener keeps its name on 127.0.0.1:0, check flags stay out', async () => {
  const plan = await planCheck(['--rate', '10', '--listen', 'web=:8080', '--listen', 'admin=:9090', '--ready-delay', '100', '--no-preload', '--', 'node', fixture('fd-server.mjs')]);
  assert.ok(plan !== 'help' && plan.spec.kind === 'command');
  assert.deepEqual(plan.spec.command, ['node', fixture('fd-server.mjs')]);
  assert.deepEqual(plan.spec.runArgs, ['--ready-delay', '100', '--no-preload', '--listen', 'web=127.0.0.1:0', '--listen', 'admin=127.0.0.1:0', '--terminate-timeout', '10000', '--ready-timeout', '10000']);
  assert.equal(plan.options.rate, 10);
});

test('a Node command under the listen preload keeps its own ports, on 127.0.0.1: an unchanged app listens on the number it knows', async () => {
  const plan = await planCheck(['--listen', 'web=:8080', '--listen', 'admin=0.0.0.0:9090', '--', 'node', fixture('fd-server.mjs')]);
  assert.ok(plan !== 'help' && plan.spec.kind === 'command');
  assert.deepEqual(plan.spec.runArgs, ['--listen', 'web=127.0.0.1:8080', '--listen', 'admin=127.0.0.1:9090', '--terminate-timeout', '10000', '--ready-timeout', '10000']);
});

test('-c FILE: the file\'s command, its listeners moved, its shorter deadline kept', async () => {
  fs.writeFileSync(path.join(dir, 'server.py'), '');
  const config = path.join(dir, 'overseer.json');
  fs.writeFileSync(config, JSON.stringify({ listeners: [{ name: 'web', address: ':8080' }], command: ['python3', 'server.py'], terminateTimeout: 2000 }));
  const plan = await planCheck(['-c', config]);
  assert.ok(plan !== 'help' && plan.spec.kind === 'command');
  assert.deepEqual(plan.spec.command, ['python3', 'server.py']);
  assert.deepEqual(plan.spec.runArgs, ['--config', config, '--listen', 'web=127.0.0.1:0', '--terminate-timeout', '2000', '--ready-timeout', '10000']);
  assert.equal(plan.options.terminateTimeout, 2000);
});

test('mistakes name the flag, through overseer run\'s own checks for its options', async () => {
  await assert.rejects(planCheck(['--rate', '0', 'app.mjs']), /--rate takes a whole number of at least 1/);
  await assert.rejects(planCheck(['--stop-signal', 'SIGNOPE', '--', 'node', fixture('fd-server.mjs')]), /--stop-signal/);
  await assert.rejects(planCheck(['--listen', ':8080', 'app.mjs']), /--listen is an `overseer run` option/);
  await assert.rejects(planCheck(['--', 'no-such-program-here']), /cannot find "no-such-program-here"/);
  assert.equal(await planCheck(['--help']), 'help');
});

test('the preload moves every address of a run() app, caps its deadlines, keeps its onEvent', async () => {
  const { overridden } = await import('../../src/check/preload.ts');
  const seen: string[] = [];
  const program = () => {};
  const one = overridden({ program, address: ':3000', terminateTimeout: 60_000, readyTimeout: 500, onEvent: (event) => seen.push(event.type) }, { addresses: ['127.0.0.1:0'], maxTerminateTimeout: 10_000, maxReadyTimeout: 10_000 });
  assert.deepEqual(one.addresses, ['127.0.0.1:0']);
  assert.equal('address' in one, false);
  assert.equal(one.terminateTimeout, 10_000);
  assert.equal(one.readyTimeout, 500);
  const two = overridden({ program, addresses: [':3000', 'unix:/run/app.sock'] }, { addresses: ['127.0.0.1:0'], terminateTimeout: 1234 });
  assert.equal(two.addresses?.length, 2);
  assert.equal(two.addresses?.[0], '127.0.0.1:0');
  assert.match(String(two.addresses?.[1]), /^unix:.*overseer-check-\d+-1\.sock$/);
  assert.equal(two.terminateTimeout, 1234);
  assert.equal(two.readyTimeout, 30_000);
  // The app's own onEvent still hears every event (the check's line goes to stderr first).
  one.onEvent?.({ type: 'respawn-scheduled', at: 0, delayMs: 1, crashes: 1 });
  assert.deepEqual(seen, ['respawn-scheduled']);
});
