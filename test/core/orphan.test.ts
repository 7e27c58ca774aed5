import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import { after, test } from 'node:test';
import type { OverseerEvent } from '../../src/events.ts';
import { PARENT_CHECK_MS, startedByNpm } from '../../src/core/orphan.ts';
import { fixture, isAlive, root, scale } from '../helpers/master.ts';

const pids = new Set<number>();
after(() => {
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
});

/** The test's environment without npm's variables: the tests themselves may run under `npm test`. */
function envWithoutNpm(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('npm_')));
}

/** Starts embedded.mjs under a stand-in for npx; returns its pid, the master's and its events. */
async function underNpx(env: NodeJS.ProcessEnv) {
  const npx = spawn(process.execPath, [fixture('npm-parent.mjs'), fixture('embedded.mjs')], {
    cwd: root, env: { ...env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  pids.add(npx.pid!);
  const events: OverseerEvent[] = [];
  let masterPid = 0;
  const waiters = new Set<() => void>();
  // stdout ends when npx, the master and its child have all closed it.
  const ended = new Promise<void>((resolve) => npx.stdout.once('end', resolve));
  readline.createInterface({ input: npx.stdout }).on('line', (line) => {
    const message = JSON.parse(line) as { masterPid?: number } & OverseerEvent;
    if (message.masterPid) {
      masterPid = message.masterPid;
      pids.add(masterPid);
    } else events.push(message);
    for (const waiter of [...waiters]) waiter();
  });
  const waitFor = (type: OverseerEvent['type']) => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} within the deadline; events: ${events.map((event) => event.type).join(' ')}`)), 15_000 * scale);
    const check = () => {
      if (!events.some((event) => event.type === type)) return;
      clearTimeout(timer);
      waiters.delete(check);
      resolve();
    };
    waiters.add(check);
    check();
  });
  await waitFor('child-ready');
  return { npx, masterPid, events, ended };
}

test('a master npx started shuts down gracefully when npx is killed', async () => {
  const { npx, masterPid, events, ended } = await underNpx({ ...envWithoutNpm(), npm_command: 'exec', npm_execpath: '/usr/lib/node_modules/npm/bin/npm-cli.js' });
  npx.kill('SIGKILL');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([ended, new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the master ${masterPid} still runs; events: ${events.map((event) => event.type).join(' ')}`)), 15_000 * scale);
  })]).finally(() => clearTimeout(timer));
  assert.ok(events.some((event) => event.type === 'child-draining' && event.reason === 'shutdown'), 'the child was drained');
  assert.ok(events.some((event) => event.type === 'master-exiting' && event.reason === 'shutdown' && event.code === 0));
});

test('a master started by anything but npm keeps serving when its parent exits (nohup, &)', async () => {
  const { npx, masterPid, events, ended } = await underNpx(envWithoutNpm());
  npx.kill('SIGKILL');
  await once(npx, 'exit');
  // A negative: give the watcher three of its periods to (wrongly) act.
  const stillThere = await Promise.race([ended.then(() => false), new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 3 * PARENT_CHECK_MS))]);
  assert.equal(stillThere, true, `the master exited; events: ${events.map((event) => event.type).join(' ')}`);
  assert.ok(isAlive(masterPid));
  process.kill(masterPid, 'SIGTERM');
  await ended;
  assert.ok(events.some((event) => event.type === 'master-exiting' && event.reason === 'shutdown'));
});

test('npm and npx are recognised by the variables they set', () => {
  assert.equal(startedByNpm({ npm_command: 'exec' }), true);
  assert.equal(startedByNpm({ npm_lifecycle_event: 'start' }), true);
  assert.equal(startedByNpm({ npm_execpath: '/usr/lib/node_modules/npm/bin/npm-cli.js' }), true);
  assert.equal(startedByNpm({ PATH: '/usr/bin', INVOCATION_ID: 'systemd' }), false);
});
