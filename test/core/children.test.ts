// The children state machine through a fake Launcher: no processes, fake children that emit
// 'exit' when the test (or their behaviour) says so. Deadlines run on node:test mock timers, so
// every timing is exact and nothing waits for real time.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { describe, test, type TestContext } from 'node:test';
import { Children, TRANSITIONS, type HandoffResult } from '../../src/core/children.ts';
import { Respawner } from '../../src/core/respawn.ts';
import type { Launcher, LaunchEvents } from '../../src/core/launch/launcher.ts';
import type { EventBody } from '../../src/events.ts';

/** How a fake child acts: get ready on its own, and exit when asked to drain or on SIGTERM. */
interface Behaviour {
  readonly ready: boolean;
  readonly exitOnDrain: boolean;
  readonly exitOnTerm: boolean;
}
const COOPERATIVE: Behaviour = { ready: true, exitOnDrain: true, exitOnTerm: true };

let nextPid = 1000;

class FakeChild extends EventEmitter {
  readonly pid = nextPid++;
  readonly signals: string[] = [];
  readonly drains: string[] = [];
  exited = false;
  constructor(readonly generation: number, readonly events: LaunchEvents, readonly behaviour: Behaviour) {
    super();
    // After launch() returns, as a real child's messages arrive after the fork.
    if (behaviour.ready) queueMicrotask(() => events.ready());
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    this.signals.push(signal);
    if (signal === 'SIGKILL') this.exit(null, 'SIGKILL');
    else if (signal === 'SIGTERM' && this.behaviour.exitOnTerm) this.exit(0);
    return true;
  }

  drain(reason: string): void {
    this.drains.push(reason);
    if (this.behaviour.exitOnDrain) this.exit(0);
  }

  /** Exits on a later turn of the event loop, as a real process does. */
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exited) return;
    this.exited = true;
    setImmediate(() => this.emit('exit', code, signal));
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Turns the event loop until `check` holds; no real time passes on purpose. */
async function until(what: string, check: () => boolean): Promise<void> {
  for (let turn = 0; turn < 1_000; turn++) {
    if (check()) return;
    await nextTurn();
  }
  assert.fail(`never happened: ${what}`);
}

function harness(options: { readyTimeout?: number; terminateTimeout?: number; behave?: (generation: number) => Partial<Behaviour> } = {}) {
  const events: EventBody[] = [];
  const launched: FakeChild[] = [];
  const lost: number[] = [];
  const stopped: number[] = [];
  const launcher: Launcher = {
    launch(context, launchEvents) {
      const child = new FakeChild(context.generation, launchEvents, { ...COOPERATIVE, ...options.behave?.(context.generation) });
      launched.push(child);
      return { process: child as unknown as ChildProcess, drain: (reason) => child.drain(reason) };
    },
    check: () => Promise.reject(new Error('no checks here')),
  };
  const children = new Children({
    config: { readyTimeout: options.readyTimeout ?? 30_000, terminateTimeout: options.terminateTimeout ?? 30_000 },
    launcher,
    log: { debug() {}, warn() {} },
    emit: (event) => events.push(event),
    context: () => ({ listeners: [], sha256: 'sha', bundlePath: '/app.mjs' }),
    onRestart: () => {},
    onLost: (code) => lost.push(code),
    onStopped: (code) => stopped.push(code),
  });
  const ofType = <T extends EventBody['type']>(type: T) => events.filter((event): event is Extract<EventBody, { type: T }> => event.type === type);
  return { children, events, launched, lost, stopped, ofType, child: (generation: number) => launched[generation - 1]! };
}

/** Starts the first child and waits until it is ready. */
async function started(h: ReturnType<typeof harness>): Promise<void> {
  h.children.start();
  await until('the first child is ready', () => h.ofType('child-ready').length === 1);
}

describe('children: the phase table', () => {
  test('a child moves forward only, and exited is final', () => {
    assert.deepEqual(TRANSITIONS, { starting: ['ready', 'draining', 'exited'], ready: ['draining', 'exited'], draining: ['exited'], exited: [] });
  });
});

describe('children: handoffs', () => {
  test('a burst of 50 restarts costs two handoffs, and every caller gets a result', async () => {
    const h = harness();
    await started(h);
    const results = await Promise.all(Array.from({ length: 50 }, () => h.children.handoff('signal')));
    assert.equal(h.ofType('handoff-started').length, 2);
    assert.equal(h.ofType('handoff-completed').length, 2);
    assert.equal(h.launched.length, 3);
    assert.ok(results.every((result) => result.ok));
    // The first caller gets the first handoff's child, every later one the coalesced one's.
    assert.deepEqual(new Set(results.map((result) => result.ok && result.pid)), new Set([h.child(2).pid, h.child(3).pid]));
    assert.deepEqual(h.children.list().map((child) => [child.pid, child.phase, child.serving]), [[h.child(3).pid, 'ready', true]]);
    assert.deepEqual(h.lost, []);
  });

  test('the old child drains only once the new one is ready', async () => {
    const h = harness({ behave: (generation) => ({ ready: generation === 1 }) });
    await started(h);
    const result = h.children.handoff('signal');
    await until('the new child is forked', () => h.launched.length === 2);
    await nextTurn();
    assert.deepEqual(h.child(1).drains, []);
    h.child(2).events.ready();
    assert.deepEqual(await result, { ok: true, pid: h.child(2).pid });
    assert.deepEqual(h.child(1).drains, ['handoff:signal']);
    const order = h.events.map((event) => event.type);
    assert.ok(order.lastIndexOf('child-ready') < order.indexOf('child-draining'), order.join(' '));
  });

  test('shutdown during a handoff stops both children; the late ready of the new one is ignored', async () => {
    const h = harness({ behave: (generation) => ({ ready: generation === 1, exitOnTerm: generation === 1 }) });
    await started(h);
    const result = h.children.handoff('upgrade');
    await until('the new child is forked', () => h.launched.length === 2);
    h.children.stop('SIGTERM');
    assert.deepEqual(h.ofType('child-draining').map((event) => [event.pid, event.reason]), [[h.child(1).pid, 'shutdown'], [h.child(2).pid, 'shutdown']]);
    h.child(2).events.ready();
    h.child(2).exit(0);
    const failed = await result;
    assert.equal(failed.ok, false);
    assert.equal(!failed.ok && failed.error.code, 'ERR_OVERSEER_CHILD_FAILED');
    assert.equal(h.ofType('child-ready').length, 1, 'a draining child does not become ready');
    await until('the master is told to exit', () => h.stopped.length === 1);
    // The serving child's code: it drained and exited 0.
    assert.deepEqual(h.stopped, [0]);
    assert.ok(h.ofType('child-exited').every((event) => event.expected));
    assert.deepEqual(h.lost, []);
    const refused = await h.children.handoff('ctl');
    assert.equal(!refused.ok && refused.error.code, 'ERR_OVERSEER_SHUTTING_DOWN');
    assert.ok(h.child(1).signals.includes('SIGTERM') && h.child(2).signals.includes('SIGTERM'));
  });

  test('a second signal while stopping is passed on to every child', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const h = harness({ behave: () => ({ exitOnTerm: false }) });
    await started(h);
    h.children.stop('SIGINT');
    h.children.stop('SIGINT');
    assert.deepEqual(h.child(1).signals, ['SIGINT', 'SIGINT']);
    t.mock.timers.tick(30_000);
    await until('the master is told to exit', () => h.stopped.length === 1);
    assert.deepEqual(h.stopped, [128 + 9], 'killed at terminateTimeout: 128 + SIGKILL');
  });

  test('stopping with no child left ends at once with the signal\'s code', async () => {
    const h = harness();
    await started(h);
    h.child(1).exit(0);
    await until('the child is lost', () => h.lost.length === 1);
    h.children.stop('SIGTERM');
    assert.deepEqual(h.stopped, [128 + 15]);
  });

  test('a new child that dies while the old one drains is reported as lost once the old one is gone', async () => {
    const h = harness({ behave: (generation) => ({ exitOnDrain: generation !== 1 }) });
    await started(h);
    const result = h.children.handoff('signal');
    await until('the old child is told to drain', () => h.child(1).drains.length === 1);
    h.child(2).exit(3);
    await until('the new child exited', () => h.ofType('child-exited').length === 1);
    assert.deepEqual(h.lost, [], 'the handoff under way decides');
    h.child(1).exit(0);
    assert.deepEqual(await result, { ok: true, pid: h.child(2).pid });
    assert.deepEqual(h.lost, [3]);
    assert.deepEqual(h.children.list(), []);
  });

  test('a new child whose program fails is stopped and the old one keeps serving', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const h = harness({ terminateTimeout: 30_000, behave: (generation) => ({ ready: generation === 1, exitOnTerm: false }) });
    await started(h);
    const result = h.children.handoff('signal');
    await until('the new child is forked', () => h.launched.length === 2);
    h.child(2).events.failed('boom');
    await until('the handoff failed', () => h.ofType('handoff-failed').length === 1);
    assert.deepEqual(h.child(2).signals, ['SIGTERM'], 'a child still starting is stopped by SIGTERM');
    // A child that never got ready gets min(2 s, terminateTimeout) to exit.
    t.mock.timers.tick(1_999);
    assert.deepEqual(h.child(2).signals, ['SIGTERM']);
    t.mock.timers.tick(1);
    await until('the failed child is killed', () => h.child(2).signals.includes('SIGKILL'));
    const failed = await result;
    assert.equal(!failed.ok && failed.error.code, 'ERR_OVERSEER_CHILD_FAILED');
    assert.match(h.ofType('handoff-failed')[0]!.error, /failed in its program: boom/);
    assert.deepEqual(h.children.list().map((child) => [child.pid, child.phase, child.serving]), [[h.child(1).pid, 'ready', true]]);
    assert.deepEqual(h.lost, []);
  });

  test('ready timeout: the new child is stopped after readyTimeout, and the old one stays', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const h = harness({ readyTimeout: 5_000, behave: (generation) => ({ ready: generation === 1 }) });
    await started(h);
    const result = h.children.handoff('signal');
    await until('the new child is forked', () => h.launched.length === 2);
    t.mock.timers.tick(4_999);
    await nextTurn();
    assert.equal(h.ofType('handoff-failed').length, 0);
    t.mock.timers.tick(1);
    const failed = await result;
    assert.equal(!failed.ok && failed.error.code, 'ERR_OVERSEER_READY_TIMEOUT');
    assert.deepEqual(h.ofType('child-draining').map((event) => [event.pid, event.reason]), [[h.child(2).pid, 'failed']]);
    assert.deepEqual(h.children.list().map((child) => child.pid), [h.child(1).pid]);
  });

  test('a first child that is never ready is stopped, and its loss passes on at least code 1', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const h = harness({ readyTimeout: 1_000, behave: () => ({ ready: false }) });
    h.children.start();
    t.mock.timers.tick(1_000);
    await until('the first child is lost', () => h.lost.length === 1);
    assert.deepEqual(h.ofType('child-draining').map((event) => event.reason), ['ready-timeout']);
    assert.deepEqual(h.lost, [1], 'it exited 0, but it failed: 1');
  });

  test('drain timeout: an old child that does not exit is killed at terminateTimeout', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const h = harness({ terminateTimeout: 10_000, behave: (generation) => ({ exitOnDrain: generation !== 1 }) });
    await started(h);
    const result: Promise<HandoffResult> = h.children.handoff('signal');
    await until('the old child is told to drain', () => h.child(1).drains.length === 1);
    t.mock.timers.tick(9_999);
    await nextTurn();
    assert.deepEqual(h.child(1).signals, []);
    t.mock.timers.tick(1);
    await until('the old child is killed', () => h.child(1).signals.includes('SIGKILL'));
    assert.deepEqual(await result, { ok: true, pid: h.child(2).pid });
    assert.deepEqual(h.child(1).signals, ['SIGKILL']);
    const exited = h.ofType('child-exited')[0]!;
    assert.deepEqual([exited.pid, exited.signal, exited.expected], [h.child(1).pid, 'SIGKILL', true]);
    assert.equal(h.ofType('handoff-completed')[0]!.timings.drainMs, 10_000);
  });
});

describe('respawner: backoff and the crash-loop limit', () => {
  function respawner(t: TestContext, limits: { minDelay: number; maxDelay: number; maxCrashes: number; window: number }) {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const events: EventBody[] = [];
    let respawns = 0;
    const r = new Respawner({ limits, log: { debug() {}, warn() {} }, emit: (event) => events.push(event), respawn: () => respawns++ });
    return { r, events, respawns: () => respawns };
  }

  test('the delay doubles from minDelay up to maxDelay, and the respawn waits for it', (t) => {
    const { r, events, respawns } = respawner(t, { minDelay: 100, maxDelay: 300, maxCrashes: 5, window: 60_000 });
    const delays: number[] = [];
    for (let crash = 1; crash <= 4; crash++) {
      assert.equal(r.crashed(), true);
      const event = events.at(-1);
      assert.ok(event?.type === 'respawn-scheduled');
      assert.equal(event.crashes, crash);
      delays.push(event.delayMs);
      t.mock.timers.tick(event.delayMs - 1);
      assert.equal(respawns(), crash - 1);
      t.mock.timers.tick(1);
      assert.equal(respawns(), crash);
    }
    assert.deepEqual(delays, [100, 200, 300, 300]);
  });

  test('more than maxCrashes within the window gives up; crashes older than the window are forgotten', (t) => {
    const { r, events } = respawner(t, { minDelay: 10, maxDelay: 10, maxCrashes: 2, window: 1_000 });
    assert.equal(r.crashed(), true);
    t.mock.timers.tick(1_000);
    // The first crash is out of the window now.
    assert.equal(r.crashed(), true);
    assert.equal(r.crashed(), true);
    assert.equal(r.crashed(), false);
    assert.deepEqual(events.map((event) => event.type === 'respawn-scheduled' && event.crashes), [1, 1, 2]);
  });

  test('cancel drops a pending respawn', (t) => {
    const { r, respawns } = respawner(t, { minDelay: 100, maxDelay: 100, maxCrashes: 5, window: 60_000 });
    r.crashed();
    r.cancel();
    t.mock.timers.tick(1_000);
    assert.equal(respawns(), 0);
  });
});
