import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import { after, test } from 'node:test';
import type { OverseerEvent } from '../../src/events.ts';
import { startedByNpm } from '../../src/core/orphan.ts';
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
  // NODE_DEBUG=overseer: the master says on stderr whether it watches its parent.
  const npx = spawn(process.execPath, [fixture('npm-parent.mjs'), fixture('embedded.mjs')], {
    cwd: root, env: { ...env, NODE_OPTIONS: '', NODE_DEBUG: 'overseer' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  pids.add(npx.pid!);
  let stderr = '';
  npx.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    for (const waiter of [...waiters]) waiter();
  });
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
  const waitUntil = (what: string, done: () => boolean) => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`no ${what} within the deadline; events: ${events.map((event) => event.type).join(' ')}\nstderr:\n${stderr}`));
    }, 15_000 * scale);
    const check = () => {
      if (!done()) return;
      clearTimeout(timer);
      waiters.delete(check);
      resolve();
    };
    waiters.add(check);
    check();
  });
  const waitFor = (type: OverseerEvent['type'], count = 1) => waitUntil(`${type} #${count}`, () => events.filter((event) => event.type === type).length >= count);
  await waitFor('child-ready');
  return { npx, masterPid, events, ended, waitFor, waitUntil, stderr: () => stderr };
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
  const { npx, masterPid, events, ended, waitFor, waitUntil, stderr } = await underNpx(envWithoutNpm());
  // The decision, heard as it is made: no watcher is armed, so nothing can act later.
  await waitUntil('the master deciding not to watch its parent', () => /not watching the parent \(pid \d+\): npm did not start this master/.test(stderr()));
  assert.doesNotMatch(stderr(), /watching the parent \(pid \d+\) every/);
  npx.kill('SIGKILL');
  await once(npx, 'exit');
  // Orphaned, it still does its work: a handoff on SIGUSR2.
  process.kill(masterPid, 'SIGUSR2');
  await waitFor('handoff-completed');
  assert.ok(isAlive(masterPid), `the master exited; events: ${events.map((event) => event.type).join(' ')}`);
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
