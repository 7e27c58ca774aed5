import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Load, ask } from '../helpers/load.ts';
import { fixture, startMaster, tempDir, type RunningMaster } from '../helpers/master.ts';

const app = fixture('app.mjs');
const masters: RunningMaster[] = [];
after(() => Promise.all(masters.map((master) => master.stop())));

async function start(env: Record<string, string> = {}): Promise<RunningMaster & { control(mode: string): void }> {
  const dir = tempDir();
  const controlFile = path.join(dir, 'control.json');
  const master = await startMaster(app, { env: { APP_CONTROL: controlFile, ...env } });
  masters.push(master);
  return Object.assign(master, { control: (mode: string) => fs.writeFileSync(controlFile, JSON.stringify({ mode })) });
}

function handoffs(master: RunningMaster) {
  return master.events.filter((event) => event.type === 'handoff-completed').length;
}

/** Every answer came from a child that had reported ready, and before that child exited. */
function assertAnsweredByReadyChildren(master: RunningMaster, load: Load) {
  const ready = new Map<number, number>();
  const exited = new Map<number, number>();
  for (const event of master.events) {
    if (event.type === 'child-ready') ready.set(event.pid, event.at);
    if (event.type === 'child-exited') exited.set(event.pid, event.at);
  }
  for (const answer of load.result.answers) {
    assert.ok(ready.has(answer.pid), `answer from pid ${answer.pid}, which never reported ready`);
    assert.ok(answer.sentAt <= (exited.get(answer.pid) ?? Infinity), `answer from pid ${answer.pid} after it exited`);
  }
}

describe('ready-first handoff', () => {
  test('SIGUSR2 hands off to a new child, which answers afterwards', async () => {
    const master = await start();
    const before = await ask(master.port);
    master.process.kill('SIGUSR2');
    const done = await master.waitFor('handoff-completed');
    assert.equal(done.from, before.pid);
    assert.notEqual(done.to, before.pid);
    assert.ok(done.timings.readyMs >= 0 && done.timings.totalMs >= done.timings.readyMs);
    const after = await ask(master.port);
    assert.equal(after.pid, done.to);
    const order = master.events.map((event) => `${event.type}:${'pid' in event ? event.pid : ''}`);
    assert.ok(order.indexOf(`child-ready:${done.to}`) < order.indexOf(`child-draining:${before.pid}`), `new child ready before the old drains: ${order.join(' ')}`);
  });

  test('a restart signal while the first child still boots replaces it promptly', async () => {
    const controlFile = path.join(tempDir(), 'control.json');
    fs.writeFileSync(controlFile, JSON.stringify({ mode: 'never-ready' }));
    const master = await startMaster(app, { noWait: true, env: { APP_CONTROL: controlFile, APP_OPTIONS: JSON.stringify({ terminateTimeout: 20_000 }) } });
    masters.push(master);
    await master.waitFor('child-forked');
    fs.writeFileSync(controlFile, JSON.stringify({ mode: 'serve' }));
    master.process.kill('SIGUSR2');
    const done = await master.waitFor('handoff-completed');
    assert.ok(done.timings.totalMs < 10_000, `took ${done.timings.totalMs} ms`);
    assert.equal((await ask(master.port)).pid, done.to);
  });

  test('restart() from the child asks for a handoff', async () => {
    const master = await start();
    const before = await ask(master.port);
    await ask(master.port, '127.0.0.1', '/?restart=1');
    const done = await master.waitFor('handoff-completed', (event) => event.reason === 'child-request');
    assert.equal(done.from, before.pid);
  });

  // Back to back: each handoff starts as soon as the one before completes, its old child often
  // still draining. Ten show that as twenty did; the 10,000-handoff soak is in bench/.
  const HANDOFFS = 10;
  for (const keepAlive of [true, false]) {
    test(`${HANDOFFS} handoffs back to back under load, keep-alive ${keepAlive ? 'on' : 'off'}: zero failed requests`, async () => {
      const master = await start();
      const load = new Load({ port: master.port, keepAlive, concurrency: 8, maxMs: 60_000 });
      for (let round = 1; round <= HANDOFFS; round++) {
        master.process.kill('SIGUSR2');
        await master.waitFor('handoff-completed', () => handoffs(master) >= round, 20_000);
      }
      const result = await load.stop();
      assert.deepEqual(result.failures, []);
      assert.ok(result.answers.length > 100, `only ${result.answers.length} answers`);
      assert.equal(new Set(result.answers.map((answer) => answer.pid)).size >= HANDOFFS - 2, true, 'answers came from the successive children');
      assertAnsweredByReadyChildren(master, load);
    });
  }

  test('a burst of 50 SIGUSR2 is coalesced and serves every request', async () => {
    const master = await start();
    const load = new Load({ port: master.port, keepAlive: true, concurrency: 8, maxMs: 60_000 });
    for (let i = 0; i < 50; i++) master.process.kill('SIGUSR2');
    await master.waitFor('handoff-completed');
    // Let any coalesced follow-up finish, then prove nothing else is pending.
    const started = () => master.events.filter((event) => event.type === 'handoff-started').length;
    if (started() > 1) await master.waitFor('handoff-completed', () => handoffs(master) >= 2);
    const result = await load.stop();
    assert.ok(started() <= 2, `${started()} handoffs for one burst`);
    assert.deepEqual(result.failures, []);
    assertAnsweredByReadyChildren(master, load);
  });
});

describe('a new child that fails leaves the old one serving', () => {
  const cases: Array<[string, Record<string, string>]> = [
    ['throws in its program', {}],
    ['exits before ready', {}],
    ['is never ready', { APP_OPTIONS: JSON.stringify({ readyTimeout: 1500 }) }],
    ['fails after it listened', {}],
  ];
  const modes: Record<string, string> = {
    'throws in its program': 'throw',
    'exits before ready': 'exit',
    'is never ready': 'never-ready',
    'fails after it listened': 'fail-after-listen',
  };
  for (const [name, env] of cases) {
    test(`new child ${name}`, async () => {
      const master = await start(env);
      const serving = await ask(master.port);
      const load = new Load({ port: master.port, keepAlive: true, concurrency: 4, maxMs: 30_000 });
      master.control(modes[name] ?? 'serve');
      master.process.kill('SIGUSR2');
      const failed = await master.waitFor('handoff-failed');
      assert.match(failed.code, /^ERR_OVERSEER_(CHILD_FAILED|READY_TIMEOUT)$/);
      await master.waitFor('child-exited', (event) => event.pid === failed.pid);
      const result = await load.stop();
      assert.deepEqual(result.failures, []);
      assert.ok(result.answers.length > 0);
      const after = await ask(master.port);
      assert.equal(after.pid, serving.pid, 'the old child still serves');
      assert.equal(master.process.exitCode, null, 'the master keeps running');
      // It recovers: the next good release hands off normally.
      master.control('serve');
      master.process.kill('SIGUSR2');
      const done = await master.waitFor('handoff-completed');
      assert.equal(done.from, serving.pid);
    });
  }
});
