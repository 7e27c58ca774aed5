// Supervisor with real processes (test/fixtures/supervised-*.mjs): states, retries with backoff,
// stops and kills, group signals, logs, iterables, independent supervisors, and what happens to
// the children when the supervising process exits.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import readline from 'node:readline';
import { after, afterEach, describe, test } from 'node:test';
import { isOverseerError, type ErrorCode } from '../../src/errors.ts';
import { retryDelayFor, normalizeProcessOptions } from '../../src/supervisor/options.ts';
import { Supervisor, type LogLine, type ProcessOptions, type ProcessState, type StateChange } from '../../src/supervisor/supervisor.ts';
import { fixture, isAlive, root, scale, tempDir, until } from '../helpers/master.ts';

/** No test may hang: a wait the supervisor never ends fails here instead. */
const limits = { timeout: 20_000 * scale };
const node = process.execPath;
const lines = fixture('supervised-lines.mjs');
const flaky = fixture('supervised-flaky.mjs');
const stubborn = fixture('supervised-stubborn.mjs');
const parent = fixture('supervised-parent.mjs');
const host = fixture('supervised-host.mjs');

/** Every event of one supervisor, in the order it emitted them, with waits on what comes. */
class Recorder {
  readonly events: Array<{ type: 'state'; change: StateChange } | { type: 'log'; line: LogLine }> = [];
  readonly #waiters = new Set<() => void>();

  constructor(readonly supervisor: Supervisor) {
    supervisor.on('state', (change) => this.#push({ type: 'state', change }));
    supervisor.on('log', (line) => this.#push({ type: 'log', line }));
  }

  #push(event: Recorder['events'][number]): void {
    this.events.push(event);
    for (const waiter of this.#waiters) waiter();
  }

  states(id: string): StateChange[] {
    return this.events.flatMap((event) => (event.type === 'state' && event.change.id === id ? [event.change] : []));
  }

  stateNames(id: string): ProcessState[] {
    return this.states(id).map((change) => change.state);
  }

  logs(id: string, stream?: LogLine['stream']): LogLine[] {
    return this.events.flatMap((event) =>
      event.type === 'log' && event.line.id === id && (stream === undefined || event.line.stream === stream) ? [event.line] : [],
    );
  }

  waitFor<T>(what: string, find: () => T | undefined, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found === undefined) return;
        cleanup();
        resolve(found);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.events.map(label))}`));
      }, timeoutMs * scale);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  state(id: string, state: ProcessState, nth = 1): Promise<StateChange> {
    return this.waitFor(`${id} ${state} #${nth}`, () => this.states(id).filter((change) => change.state === state)[nth - 1]);
  }

  log(id: string, pattern: RegExp): Promise<LogLine> {
    return this.waitFor(`${id} log ${pattern}`, () => this.logs(id).find((line) => pattern.test(line.text)));
  }
}

function label(event: Recorder['events'][number]): string {
  return event.type === 'state' ? `${event.change.id}:${event.change.state}` : `${event.line.id}:${event.line.stream}:${event.line.text}`;
}

const supervisors: Supervisor[] = [];
/** Grandchildren a test learnt about: killed after it, should the test fail before they die. */
const grandchildren: number[] = [];
afterEach(async () => {
  await Promise.all(supervisors.map((supervisor) => supervisor.stopAll({ kill: true })));
  supervisors.length = 0;
  for (const pid of grandchildren.splice(0)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
});

function create(): { supervisor: Supervisor; recorder: Recorder } {
  const supervisor = new Supervisor();
  supervisors.push(supervisor);
  return { supervisor, recorder: new Recorder(supervisor) };
}

async function rejectsWith(promise: Promise<unknown> | (() => unknown), code: ErrorCode, message?: RegExp): Promise<void> {
  const check = (error: unknown) => {
    assert.ok(isOverseerError(error, code), `expected ${code}, got ${String(error)}`);
    if (message) assert.match(error.message, message);
    return true;
  };
  if (typeof promise === 'function') assert.throws(promise, check);
  else await assert.rejects(promise, check);
}

describe('a process that exits on its own', () => {
  test('exit 0 is finished; its output arrives as lines in order, before the final state', limits, async () => {
    const { supervisor, recorder } = create();
    supervisor.add('lines', node, [lines]);
    const status = await supervisor.supervise('lines');

    assert.equal(status.state, 'finished');
    assert.equal(status.exitCode, 0);
    assert.equal(status.signal, null);
    assert.equal(status.error, null);
    assert.equal(status.attempts, 1);
    assert.equal(status.retryAt, null);
    assert.equal(typeof status.pid, 'number');
    assert.ok(status.startedAt !== null && status.stoppedAt !== null && status.startedAt <= status.stoppedAt);
    assert.equal(status.runtime, status.stoppedAt - status.startedAt);
    assert.deepEqual(supervisor.status('lines'), status);

    assert.deepEqual(recorder.stateNames('lines'), ['starting', 'running', 'finished']);
    assert.deepEqual(recorder.states('lines').map((change) => change.previous), ['idle', 'starting', 'running']);
    assert.deepEqual(
      recorder.logs('lines', 'stdout').map((line) => line.text),
      [`pid ${status.pid}`, 'out 1', 'out 2', 'out 3', 'last line without newline'],
    );
    assert.deepEqual(recorder.logs('lines', 'stderr').map((line) => line.text), ['err 1', 'err 2']);
    assert.ok(recorder.logs('lines').every((line) => line.pid === status.pid && line.id === 'lines'));
    const timestamps = recorder.logs('lines', 'stdout').map((line) => line.timestamp);
    assert.deepEqual(timestamps, [...timestamps].sort((a, b) => a - b));
    const finishedAt = recorder.events.findIndex((event) => event.type === 'state' && event.change.state === 'finished');
    assert.equal(recorder.events.findLastIndex((event) => event.type === 'log') < finishedAt, true);
  });

  test('a finished process can be supervised again, and removed', limits, async () => {
    const { supervisor, recorder } = create();
    supervisor.add('lines', node, [lines]);
    const first = await supervisor.supervise('lines');
    const second = await supervisor.supervise('lines');
    assert.equal(second.state, 'finished');
    assert.equal(second.attempts, 1);
    assert.notEqual(second.pid, first.pid);
    assert.equal(recorder.stateNames('lines').length, 6);
    supervisor.remove('lines');
    assert.deepEqual(supervisor.ids(), []);
  });

  test('a process that leaves a grandchild behind: the rest of its group is killed when it exits', limits, async () => {
    const { supervisor, recorder } = create();
    supervisor.add('parent', node, [parent, 'exit']);
    const status = await supervisor.supervise('parent');
    assert.equal(status.state, 'finished');
    const ready = /^grandchild (\d+) ready$/.exec(recorder.logs('parent').find((line) => line.text.startsWith('grandchild'))?.text ?? '');
    assert.ok(ready, JSON.stringify(recorder.logs('parent')));
    const grandchild = Number(ready[1]);
    grandchildren.push(grandchild);
    await until('the grandchild to be gone', () => (isAlive(grandchild) ? undefined : true), 5_000);
  });
});

describe('retries', () => {
  test('a failing process is started again with a growing delay until it succeeds', limits, async () => {
    const { supervisor, recorder } = create();
    const countFile = path.join(tempDir('overseer-supervisor-'), 'count');
    supervisor.add('flaky', node, [flaky, countFile, '2'], { retries: 3, retryDelay: 20, backoff: 2, maxRetryDelay: 1000 });
    const status = await supervisor.supervise('flaky');

    assert.equal(status.state, 'finished');
    assert.equal(status.attempts, 3);
    assert.equal(status.error, null);
    assert.deepEqual(recorder.stateNames('flaky'), ['starting', 'running', 'backoff', 'starting', 'running', 'backoff', 'starting', 'running', 'finished']);
    const backoffs = recorder.states('flaky').filter((change) => change.state === 'backoff');
    assert.deepEqual(backoffs.map((change) => (change.status.retryAt ?? 0) - change.timestamp), [20, 40]);
    assert.deepEqual(backoffs.map((change) => change.status.exitCode), [1, 1]);
    const changes = recorder.states('flaky');
    for (const backoff of backoffs) {
      const next = changes[changes.indexOf(backoff) + 1];
      assert.ok(next && next.timestamp >= (backoff.status.retryAt ?? 0) - 1, 'started before its retry delay was over');
    }
    assert.deepEqual(recorder.logs('flaky', 'stdout').map((line) => line.text), ['start 1', 'start 2', 'start 3']);
  });

  test('the delay grows by the backoff factor up to maxRetryDelay', limits, () => {
    const options = normalizeProcessOptions('test', { retryDelay: 10, backoff: 3, maxRetryDelay: 50 });
    assert.deepEqual([1, 2, 3, 4].map((retry) => retryDelayFor(options, retry)), [10, 30, 50, 50]);
    const constant = normalizeProcessOptions('test', { retryDelay: 5, backoff: 1 });
    assert.deepEqual([1, 9].map((retry) => retryDelayFor(constant, retry)), [5, 5]);
  });

  test('out of retries, the process is fatal with the exit code and its last stderr line', limits, async () => {
    const { supervisor, recorder } = create();
    const countFile = path.join(tempDir('overseer-supervisor-'), 'count');
    supervisor.add('flaky', node, [flaky, countFile, '5'], { retries: 2, retryDelay: 1 });
    const status = await supervisor.supervise('flaky');

    assert.equal(status.state, 'fatal');
    assert.equal(status.attempts, 3);
    assert.equal(status.exitCode, 1);
    assert.ok(isOverseerError(status.error, 'ERR_OVERSEER_PROCESS_FAILED'));
    assert.equal(status.error.exitCode, 1);
    assert.match(status.error.message, /"flaky" exited with code 1 and has no retries left \(3 starts, retries: 2\).*failing on start 3/);
    assert.equal(recorder.stateNames('flaky').filter((state) => state === 'backoff').length, 2);
  });

  test('a command that cannot start is fatal at once, retries or not', limits, async () => {
    const { supervisor, recorder } = create();
    supervisor.add('missing', 'overseer-no-such-command', [], { retries: 3, retryDelay: 1 });
    supervisor.add('bad-cwd', node, ['-e', ''], { cwd: '/nonexistent/overseer-dir' });
    const [missing, badCwd] = await supervisor.superviseAll();

    assert.equal(missing?.state, 'fatal');
    assert.equal(missing.attempts, 1);
    assert.equal(missing.pid, null);
    assert.ok(isOverseerError(missing.error, 'ERR_OVERSEER_SPAWN_FAILED'));
    assert.match(missing.error.message, /"overseer-no-such-command": no such executable/);
    assert.deepEqual(recorder.stateNames('missing'), ['starting', 'fatal']);
    assert.ok(isOverseerError(badCwd?.error, 'ERR_OVERSEER_SPAWN_FAILED'));
    assert.match(badCwd.error.message, /cwd "\/nonexistent\/overseer-dir" does not exist/);
  });
});

describe('stopping', () => {
  test('stop() sends SIGTERM to a running process: interrupted, with its status', limits, async () => {
    const { supervisor, recorder } = create();
    supervisor.add('stay', node, [lines, 'stay'], { retries: 3 });
    const done = supervisor.supervise('stay');
    const pidLine = await recorder.log('stay', /^pid \d+$/);
    const running = supervisor.status('stay');
    assert.equal(running.state, 'running');
    assert.equal(running.pid, pidLine.pid);
    assert.equal(`pid ${running.pid}`, pidLine.text);
    assert.equal(running.stoppedAt, null);
    assert.equal(running.exitCode, null);
    assert.ok(running.runtime >= 0 && running.runtime <= Date.now() - (running.startedAt ?? 0));

    const stopped = await supervisor.stop('stay');
    assert.equal(stopped.state, 'interrupted');
    assert.equal(stopped.signal, 'SIGTERM');
    assert.equal(stopped.attempts, 1);
    assert.deepEqual(await done, stopped);
    assert.deepEqual(recorder.stateNames('stay'), ['starting', 'running', 'stopping', 'interrupted']);
    assert.equal(isAlive(pidLine.pid), false);
  });

  test('a process that ignores the stop signal gets SIGKILL after stopTimeout', limits, async () => {
    const { supervisor, recorder } = create();
    supervisor.add('stubborn', node, [stubborn], { stopTimeout: 300 });
    void supervisor.supervise('stubborn');
    await recorder.log('stubborn', /^ready$/);
    const started = Date.now();
    const stopped = await supervisor.stop('stubborn');
    assert.equal(stopped.state, 'interrupted');
    assert.equal(stopped.signal, 'SIGKILL');
    assert.ok(Date.now() - started >= 290, `killed after ${Date.now() - started} ms`);
    assert.ok(recorder.logs('stubborn').some((line) => line.text === 'ignoring SIGTERM'));
  });

  test('stopAll({ kill: true }) kills at once; stopAll() stops gracefully and leaves idle ones idle', limits, async () => {
    const { supervisor, recorder } = create();
    supervisor.add('a', node, [stubborn], { stopTimeout: 30_000 });
    supervisor.add('b', node, [stubborn], { stopTimeout: 30_000 });
    void supervisor.superviseAll();
    await Promise.all([recorder.log('a', /^ready$/), recorder.log('b', /^ready$/)]);
    const started = Date.now();
    const killed = await supervisor.stopAll({ kill: true });
    assert.ok(Date.now() - started < 5_000);
    assert.deepEqual(killed.map((status) => [status.id, status.state, status.signal]), [['a', 'interrupted', 'SIGKILL'], ['b', 'interrupted', 'SIGKILL']]);

    const other = create();
    other.supervisor.add('x', node, [lines, 'stay']).add('y', node, [lines, 'stay']).add('idle', node, [lines]);
    void other.supervisor.supervise('x');
    void other.supervisor.supervise('y');
    await Promise.all([other.recorder.state('x', 'running'), other.recorder.state('y', 'running')]);
    const stopped = await other.supervisor.stopAll();
    assert.deepEqual(stopped.map((status) => [status.id, status.state, status.signal]), [['x', 'interrupted', 'SIGTERM'], ['y', 'interrupted', 'SIGTERM'], ['idle', 'idle', null]]);
  });

  test('stop() during the wait before a retry: interrupted without another start', limits, async () => {
    const { supervisor, recorder } = create();
    const countFile = path.join(tempDir('overseer-supervisor-'), 'count');
    supervisor.add('flaky', node, [flaky, countFile, '5'], { retries: 5, retryDelay: 60_000 });
    const done = supervisor.supervise('flaky');
    const backoff = await recorder.state('flaky', 'backoff');
    assert.equal(supervisor.status('flaky').state, 'backoff');
    assert.equal(supervisor.status('flaky').retryAt, backoff.status.retryAt);
    const stopped = await supervisor.stop('flaky');
    assert.equal(stopped.state, 'interrupted');
    assert.equal(stopped.attempts, 1);
    assert.equal(stopped.exitCode, 1);
    assert.deepEqual(await done, stopped);
    assert.deepEqual(recorder.stateNames('flaky'), ['starting', 'running', 'backoff', 'interrupted']);
  });
});

describe('signals', () => {
  test('signal() reaches the whole process group, grandchildren included, and stop() ends them all', limits, async () => {
    const { supervisor, recorder } = create();
    supervisor.add('parent', node, [parent]);
    void supervisor.supervise('parent');
    const ready = await recorder.log('parent', /^grandchild \d+ ready$/);
    const grandchild = Number(ready.text.split(' ')[1]);
    grandchildren.push(grandchild);
    supervisor.signal('parent', 'SIGUSR2');
    await Promise.all([recorder.log('parent', /^parent got SIGUSR2$/), recorder.log('parent', /^grandchild got SIGUSR2$/)]);
    assert.equal(supervisor.status('parent').state, 'running');

    const stopped = await supervisor.stop('parent');
    assert.equal(stopped.signal, 'SIGTERM');
    await until('the grandchild to be gone', () => (isAlive(grandchild) ? undefined : true), 5_000);
  });

  test('an exit by the signal we sent is interrupted; one by a signal from elsewhere is a failure', limits, async () => {
    const { supervisor, recorder } = create();
    supervisor.add('ours', node, [lines, 'stay'], { retries: 3, retryDelay: 1 });
    supervisor.add('theirs', node, [lines, 'stay'], { retries: 1, retryDelay: 1 });
    const ours = supervisor.supervise('ours');
    void supervisor.supervise('theirs');
    await Promise.all([recorder.state('ours', 'running'), recorder.state('theirs', 'running')]);

    supervisor.signal('ours', 'SIGTERM');
    const status = await ours;
    assert.equal(status.state, 'interrupted');
    assert.equal(status.signal, 'SIGTERM');
    assert.equal(status.attempts, 1);

    process.kill(supervisor.status('theirs').pid ?? -1, 'SIGTERM');
    await recorder.state('theirs', 'running', 2);
    assert.equal(supervisor.status('theirs').attempts, 2);
    assert.deepEqual(recorder.stateNames('theirs'), ['starting', 'running', 'backoff', 'starting', 'running']);
    assert.equal(recorder.states('theirs')[2]?.status.signal, 'SIGTERM');
  });
});

describe('events as async iterables', () => {
  test('states() and logs() yield one process\'s events; aborting the signal ends the loop quietly', limits, async () => {
    const { supervisor } = create();
    supervisor.add('stay', node, [lines, 'stay']).add('other', node, [lines]);
    const listeners = [supervisor.listenerCount('state'), supervisor.listenerCount('log')];
    const controller = new AbortController();
    const states = supervisor.states({ id: 'stay' });
    const logs = supervisor.logs({ id: 'stay', signal: controller.signal });
    void supervisor.superviseAll();

    const texts: string[] = [];
    for await (const line of logs) {
      assert.equal(line.id, 'stay');
      texts.push(`${line.stream}:${line.text}`);
      if (line.text === 'out 2') controller.abort();
    }
    assert.deepEqual(texts.slice(0, 3), [`stdout:pid ${supervisor.status('stay').pid}`, 'stdout:out 1', 'stdout:out 2']);

    void supervisor.stop('stay');
    const seen: ProcessState[] = [];
    for await (const change of states) {
      assert.equal(change.id, 'stay');
      seen.push(change.state);
      if (change.state === 'interrupted') break;
    }
    assert.deepEqual(seen, ['starting', 'running', 'stopping', 'interrupted']);
    assert.deepEqual([supervisor.listenerCount('state'), supervisor.listenerCount('log')], listeners);

    const aborted = supervisor.logs({ signal: AbortSignal.abort() });
    assert.deepEqual(await aborted.next(), { done: true, value: undefined });
    await supervisor.states().return?.();
    assert.deepEqual([supervisor.listenerCount('state'), supervisor.listenerCount('log')], listeners);
  });
});

describe('several supervisors', () => {
  test('two supervisors in one process keep their processes and events apart', limits, async () => {
    const one = create();
    const two = create();
    one.supervisor.add('app', node, [lines, 'stay']);
    two.supervisor.add('app', node, [lines, 'stay']);
    void one.supervisor.supervise('app');
    void two.supervisor.supervise('app');
    await Promise.all([one.recorder.log('app', /^out 3$/), two.recorder.log('app', /^out 3$/)]);
    const pidOne = one.supervisor.status('app').pid;
    const pidTwo = two.supervisor.status('app').pid;
    assert.notEqual(pidOne, pidTwo);

    await one.supervisor.stopAll();
    assert.equal(one.supervisor.status('app').state, 'interrupted');
    assert.equal(two.supervisor.status('app').state, 'running');
    assert.equal(isAlive(pidTwo ?? -1), true);
    assert.ok(one.recorder.logs('app').every((line) => line.pid === pidOne));
    assert.ok(two.recorder.logs('app').every((line) => line.pid === pidTwo));
    assert.deepEqual(two.recorder.stateNames('app'), ['starting', 'running']);
  });
});

describe('host exit', () => {
  const hosts: ChildProcess[] = [];
  const pids: number[] = [];
  after(() => {
    for (const child of hosts) child.kill('SIGKILL');
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });

  async function startHost(mode: 'handler' | 'default') {
    const child = spawn(node, [host, mode], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    hosts.push(child);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const first = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next();
    const line = await Promise.race([first, exited.then(() => assert.fail(`host exited early: ${stderr}`))]);
    const supervised = JSON.parse(String(line.value)) as { child: number; grandchild: number };
    pids.push(supervised.child, supervised.grandchild);
    assert.equal(isAlive(supervised.child), true);
    assert.equal(isAlive(supervised.grandchild), true);
    return { child, exited, supervised };
  }

  async function assertGone(supervised: { child: number; grandchild: number }) {
    await until('the supervised process to be gone', () => (isAlive(supervised.child) ? undefined : true), 5_000);
    await until('its grandchild to be gone', () => (isAlive(supervised.grandchild) ? undefined : true), 5_000);
  }

  test('when the supervisor\'s process exits, its children and their groups are killed', limits, async () => {
    const { child, exited, supervised } = await startHost('handler');
    child.kill('SIGTERM');
    assert.deepEqual(await exited, [0, null]);
    await assertGone(supervised);
  });

  test('when it dies of a signal it does not handle, they are killed and it still dies of that signal', limits, async () => {
    const { child, exited, supervised } = await startHost('default');
    child.kill('SIGTERM');
    assert.deepEqual(await exited, [null, 'SIGTERM']);
    await assertGone(supervised);
  });
});

describe('misuse', () => {
  test('unknown ids, duplicate ids, busy processes and bad signals are coded errors', limits, async () => {
    const { supervisor, recorder } = create();
    supervisor.add('stay', node, [lines, 'stay']);
    await rejectsWith(() => supervisor.add('stay', node), 'ERR_OVERSEER_PROCESS_EXISTS', /"stay" was already added/);
    await rejectsWith(() => supervisor.status('nope'), 'ERR_OVERSEER_UNKNOWN_PROCESS', /no process with id "nope"; the ids are "stay"/);
    await rejectsWith(supervisor.supervise('nope'), 'ERR_OVERSEER_UNKNOWN_PROCESS');
    await rejectsWith(supervisor.stop('nope'), 'ERR_OVERSEER_UNKNOWN_PROCESS');
    await rejectsWith(() => supervisor.remove('nope'), 'ERR_OVERSEER_UNKNOWN_PROCESS');
    await rejectsWith(() => supervisor.logs({ id: 'nope' }), 'ERR_OVERSEER_UNKNOWN_PROCESS');
    await rejectsWith(() => supervisor.signal('stay', 'SIGHUP'), 'ERR_OVERSEER_PROCESS_NOT_RUNNING', /it is idle/);
    assert.deepEqual(await supervisor.stop('stay'), supervisor.status('stay'));

    void supervisor.supervise('stay');
    await recorder.state('stay', 'running');
    await rejectsWith(supervisor.supervise('stay'), 'ERR_OVERSEER_PROCESS_RUNNING', /already supervised \(running\)/);
    await rejectsWith(() => supervisor.remove('stay'), 'ERR_OVERSEER_PROCESS_RUNNING', /stop\(\) it before remove\(\)/);
    await rejectsWith(() => supervisor.signal('stay', 'SIGFOO' as NodeJS.Signals), 'ERR_OVERSEER_INVALID_CONFIG', /"SIGFOO"/);
  });

  const invalid: Array<[string, unknown, RegExp]> = [
    ['retries below zero', { retries: -1 }, /supervisor\.add\("x"\)\.retries must be a retry count .*; got -1/],
    ['a fractional retry count', { retries: 1.5 }, /retries must be a retry count/],
    ['a delay as a string', { retryDelay: '5s' }, /retryDelay must be a delay in milliseconds .*; got "5s"/],
    ['a backoff below 1', { backoff: 0.5 }, /backoff must be a backoff factor/],
    ['maxRetryDelay below retryDelay', { retryDelay: 500, maxRetryDelay: 100 }, /maxRetryDelay must be at least retryDelay \(500\); got 100/],
    ['an unknown signal', { stopSignal: 'SIGFOO' }, /stopSignal must be a signal name/],
    ['a zero stopTimeout', { stopTimeout: 0 }, /stopTimeout must be a timeout/],
    ["a misspelt option", { stopTimeOut: 5 }, /has no option "stopTimeOut" \(did you mean "stopTimeout"\?\)/],
    ['env with a number', { env: { PORT: 3000 } }, /env must be an object of variable names to string values/],
    ['an empty cwd', { cwd: '' }, /cwd must be a non-empty string/],
    ['options that are not an object', 'fast', /options must be an object/],
  ];
  for (const [what, options, message] of invalid) {
    test(`add() rejects ${what}`, limits, () => {
      const supervisor = new Supervisor();
      assert.throws(
        () => supervisor.add('x', node, [], options as ProcessOptions),
        (error: unknown) => isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG') && message.test(error.message),
      );
      assert.deepEqual(supervisor.ids(), []);
    });
  }

  test('add() rejects a bad command or args', limits, () => {
    const supervisor = new Supervisor();
    assert.throws(() => supervisor.add('x', ''), /supervisor\.add\("x"\) command must be a non-empty string/);
    assert.throws(() => supervisor.add('x', node, 'a b' as unknown as string[]), /args must be an array of strings/);
    assert.throws(() => supervisor.add('', node), /id must be a non-empty string/);
  });
});
