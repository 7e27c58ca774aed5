import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { listenerHold, SpreadSchedule, spreadWindow } from '../../src/core/drain-spread.ts';
import { normalizeConfig } from '../../src/core/config.ts';
import { isOverseerError } from '../../src/errors.ts';
import { Load } from '../helpers/load.ts';
import { fixture, startMaster, type RunningMaster } from '../helpers/master.ts';

describe('drain spread: the schedule', () => {
  test('the listener stays open 250 ms into a spread drain, never past its window, not at all without one', () => {
    assert.equal(listenerHold(500), 250);
    assert.equal(listenerHold(2000), 250);
    assert.equal(listenerHold(100), 100);
    assert.equal(listenerHold(0), 0);
  });

  test("'auto' is 500 ms for a few connections and 4 ms per connection for hundreds", () => {
    assert.equal(spreadWindow('auto', 0, 30_000), 500);
    assert.equal(spreadWindow('auto', 3, 30_000), 500);
    assert.equal(spreadWindow('auto', 125, 30_000), 500);
    assert.equal(spreadWindow('auto', 500, 30_000), 2000);
    assert.equal(spreadWindow('auto', 3000, 30_000), 12_000);
  });

  test('a number is taken as it is; 0 closes every connection at once', () => {
    assert.equal(spreadWindow(1200, 3, 30_000), 1200);
    assert.equal(spreadWindow(0, 3000, 30_000), 0);
  });

  test('never more than half of what remains before the deadline', () => {
    assert.equal(spreadWindow('auto', 50_000, 30_000), 15_000);
    assert.equal(spreadWindow(5000, 10, 1000), 500);
    assert.equal(spreadWindow('auto', 10, 0), 0);
    assert.equal(spreadWindow('auto', 10, -20), 0);
  });

  test('connections are due one by one across the window, the first at once', () => {
    const schedule = new SpreadSchedule(1000, 400, 4);
    const [a, b, c, d] = [{}, {}, {}, {}];
    assert.deepEqual([a, b, c, d].map((key) => schedule.dueAt(key)), [1000, 1100, 1200, 1300]);
    // A connection keeps the time it got on its first request.
    assert.equal(schedule.dueAt(c), 1200);
    assert.equal(schedule.isDue(b, 1099), false);
    assert.equal(schedule.isDue(b, 1100), true);
    // One the count missed is due at the window's end, not beyond it.
    assert.equal(schedule.dueAt({}), 1400);
    assert.equal(schedule.dueAt({}), 1400);
    // Idle ones are swept a grace after the last became due: each busy one had its chance.
    assert.equal(schedule.sweepAt(1000), 2300);
    assert.equal(new SpreadSchedule(1000, 500, 1).sweepAt(1000), 2000);
  });

  test('a window of 0 makes every connection due at once (the old behaviour)', () => {
    const schedule = new SpreadSchedule(1000, 0, 3);
    assert.deepEqual([{}, {}, {}, {}].map((key) => schedule.isDue(key, 1000)), [true, true, true, true]);
    assert.equal(schedule.sweepAt(1000), 2000, 'the sweep comes after the same 1 s as before');
  });

  test('config.drainSpread: "auto" by default, a duration or "auto" otherwise', () => {
    const program = () => {};
    assert.equal(normalizeConfig({ program }).drainSpread, 'auto');
    assert.equal(normalizeConfig({ program, drainSpread: 0 }).drainSpread, 0);
    assert.equal(normalizeConfig({ program, drainSpread: 2000 }).drainSpread, 2000);
    for (const bad of [-1, 'fast', Number.NaN, Infinity]) {
      assert.throws(
        () => normalizeConfig({ program, drainSpread: bad }),
        (error: unknown) => isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG') && /config\.drainSpread/.test(error.message) && /"auto" or a duration/.test(error.message),
      );
    }
  });
});

describe('drain spread: a handoff under keep-alive load', () => {
  const masters: RunningMaster[] = [];
  after(() => Promise.all(masters.map((master) => master.stop())));

  /**
   * One handoff under 16 keep-alive connections; counts the old child's answers to requests sent
   * after the new child had answered its first: connections it still served once the move began.
   */
  async function handoffUnderLoad(drainSpread: number) {
    const master = await startMaster(fixture('app.mjs'), { env: { APP_OPTIONS: JSON.stringify({ drainSpread }) } });
    masters.push(master);
    const concurrency = 16;
    const load = new Load({ port: master.port, keepAlive: true, concurrency, maxMs: 60_000 });
    const old = (await master.waitFor('child-ready')).pid;
    master.process.kill('SIGUSR2');
    const done = await master.waitFor('handoff-completed', undefined, 30_000);
    const result = await load.stop();
    await master.stop();
    const firstNew = Math.min(...result.answers.filter((answer) => answer.pid === done.to).map((answer) => answer.at));
    const oldAfter = result.answers.filter((answer) => answer.pid === old && answer.sentAt > firstNew).length;
    return { result, done, oldAfter, concurrency };
  }

  test('with a window, the old child keeps serving most connections while the first move; zero failed', async () => {
    const { result, done, oldAfter, concurrency } = await handoffUnderLoad(2000);
    assert.deepEqual(result.failures, []);
    assert.ok(result.answers.some((answer) => answer.pid === done.to), 'the new child answered');
    // At once, each connection gets at most one more answer from the old child.
    assert.ok(oldAfter > 3 * concurrency, `the old child answered only ${oldAfter} requests after the new child's first`);
    assert.ok(done.timings.drainMs >= 1000, `drain took ${done.timings.drainMs} ms: the closes were not spread over 2 s`);
  });

  test('with drainSpread 0 every connection is told to close on its next answer; zero failed', async () => {
    const { result, oldAfter, concurrency } = await handoffUnderLoad(0);
    assert.deepEqual(result.failures, []);
    assert.ok(oldAfter <= concurrency, `the old child answered ${oldAfter} requests after the new child's first`);
  });
});
