import assert from 'node:assert/strict';
import { after, mock, test } from 'node:test';
import { IdleCollector } from '../../src/core/idle-gc.ts';
import { fixture, startMaster, tempDir, type RunningMaster } from '../helpers/master.ts';

const masters: RunningMaster[] = [];
after(() => Promise.all(masters.map((master) => master.stop())));

interface Collection {
  readonly type: 'idle-collection';
  readonly at: number;
  readonly inHandoff: boolean;
  readonly polling: boolean;
  readonly polls: number;
}

/** The master's events as the fixture reports them (idle-collection and test-poll are the fixture's own). */
const collections = (master: RunningMaster) => (master.events as unknown as Array<{ type: string }>).filter((event): event is Collection => event.type === 'idle-collection');

test('the idle collector: once per quiet spell, never while busy, at most one per gap', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  try {
    let busy = false;
    let collected = 0;
    const collector = new IdleCollector({ busy: () => busy, quietMs: 100, minGapMs: 10_000, collect: () => collected++ });
    collector.activity();
    mock.timers.tick(99);
    assert.equal(collected, 0, 'not before the quiet spell');
    collector.activity();
    mock.timers.tick(99);
    assert.equal(collected, 0, 'new work restarts the quiet wait');
    mock.timers.tick(1);
    assert.equal(collected, 1, 'collected once quiet');
    mock.timers.tick(60_000);
    assert.equal(collected, 1, 'once per quiet spell: no work, no collection');
    // Work that is still under way when the quiet wait ends: no collection until it is over.
    collector.activity();
    busy = true;
    mock.timers.tick(30_000);
    assert.equal(collected, 1, 'never while busy');
    busy = false;
    collector.activity();
    mock.timers.tick(100);
    assert.equal(collected, 2, 'collected once the work ended');
    // Work that ends without a word (no event, no poll's end): the backstop looks again each second.
    mock.timers.tick(10_000);
    collector.activity();
    busy = true;
    mock.timers.tick(5_000);
    assert.equal(collected, 2, 'still busy');
    busy = false;
    mock.timers.tick(1_000);
    assert.equal(collected, 3, 'the backstop saw the work end');
    mock.timers.tick(30_000);
    // Polls every 200 ms: at most one collection per gap, not one per poll.
    for (let poll = 0; poll < 100; poll++) {
      collector.activity();
      mock.timers.tick(200);
    }
    assert.equal(collected, 5, '20 s of polls every 200 ms with a 10 s gap: two collections');
    collector.stop();
    collector.activity();
    mock.timers.tick(60_000);
    assert.equal(collected, 5, 'nothing after stop()');
  } finally {
    mock.timers.reset();
  }
});

test('a master polling every 200 ms collects once when it goes quiet, not after every poll, never mid-poll', async () => {
  const master = await startMaster(fixture('idle-gc.mjs'), { env: { IDLE_POLL_MS: '200' } });
  masters.push(master);
  await master.waitFor('test-poll' as never, ((event: { polls: number }) => event.polls >= 15) as never, 30_000);
  const seen = collections(master);
  // Without the idle collector there is none; with it, the quiet after start (or after a poll)
  // brings one, and no second one can come within its 30 s gap.
  assert.ok(seen.length >= 1, `the master collected when it went quiet\n${master.report()}`);
  assert.ok(seen.length <= 2, `not after every poll: ${seen.length} collections in 15 polls\n${master.report()}`);
  for (const collection of seen) assert.equal(collection.polling, false, 'never while a poll is under way');
  await master.stop();
});

test('a master never collects mid-handoff: the collection waits until the handoff is over, then runs once', async () => {
  // The first child asks for a restart as soon as it is ready; the next child takes 800 ms to
  // start, far past the quiet wait the handoff's first event armed: the collection must wait.
  const master = await startMaster(fixture('idle-gc.mjs'), { env: { IDLE_RESTART_DIR: tempDir(), IDLE_START_MS: '800' } });
  masters.push(master);
  const completed = await master.waitFor('handoff-completed', undefined, 30_000);
  const collection = (await master.waitFor('idle-collection' as never, undefined, 30_000)) as unknown as Collection;
  assert.equal(collection.inHandoff, false, `the collection ran while the handoff was under way\n${master.report()}`);
  const events = master.events as unknown as Array<{ type: string }>;
  const started = events.findIndex((event) => event.type === 'handoff-started');
  const first = events.indexOf(collection as never);
  assert.ok(started >= 0 && first > events.indexOf(completed as never), `one collection, after the handoff (started at event ${started}, completed at ${events.indexOf(completed as never)}, collection at ${first})\n${master.report()}`);
  assert.equal(collections(master).length, 1, `one busy spell, one collection\n${master.report()}`);
  await master.stop();
});
