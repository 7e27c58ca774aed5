import assert from 'node:assert/strict';
import dc from 'node:diagnostics_channel';
import { after, test } from 'node:test';
import { createEmitter } from '../../src/events.ts';
import { fixture, startMaster, type RunningMaster } from '../helpers/master.ts';

const masters: RunningMaster[] = [];
after(() => Promise.all(masters.map((master) => master.stop())));

test('a master without onEvent publishes each lifecycle event on its overseer:<type> channel', async () => {
  // embedded.mjs has no onEvent: every event the test sees came through diagnostics_channel.
  const master = await startMaster(fixture('embedded.mjs'));
  masters.push(master);
  master.process.kill('SIGUSR2');
  const completed = await master.waitFor('handoff-completed');
  assert.ok(completed.to > 0 && typeof completed.at === 'number');
  await master.stop();
  await master.waitFor('master-exiting');
  const types = master.events.map((event) => event.type);
  for (const type of ['master-started', 'child-forked', 'child-ready', 'handoff-started', 'handoff-completed', 'child-draining', 'child-exited', 'master-exiting']) {
    assert.ok(types.includes(type as never), `${type} was published; saw ${types.join(', ')}`);
  }
  for (const event of master.events) assert.equal((event as { channel?: string }).channel, `overseer:${event.type}`);
});

test('the emitter publishes the same event onEvent gets, and nothing while nobody subscribes', () => {
  const seen: unknown[] = [];
  const given: unknown[] = [];
  const log = { debug() {}, warn() {} };
  const emit = createEmitter((event) => given.push(event), log);
  const channel = dc.channel('overseer:respawn-scheduled');
  assert.equal(channel.hasSubscribers, false);
  emit({ type: 'respawn-scheduled', delayMs: 1, crashes: 1 });
  const listener = (message: unknown) => seen.push(message);
  dc.subscribe('overseer:respawn-scheduled', listener);
  try {
    emit({ type: 'respawn-scheduled', delayMs: 2, crashes: 2 });
  } finally {
    dc.unsubscribe('overseer:respawn-scheduled', listener);
  }
  assert.equal(given.length, 2);
  assert.deepEqual(seen, [given[1]]);
});
