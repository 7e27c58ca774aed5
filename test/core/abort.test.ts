import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { after, test } from 'node:test';
import { normalizeConfig } from '../../src/core/config.ts';
import { fixture, root, scale, startMaster, type RunningMaster } from '../helpers/master.ts';

/** The master's exit, or a failure at the deadline (a master that ignores the signal must fail the test, not hang it). */
function exitOf(master: RunningMaster): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the master did not exit; events: ${master.events.map((event) => event.type).join(' ')}`)), 15_000 * scale);
  });
  return Promise.race([master.exited, deadline]).finally(() => clearTimeout(timer));
}

const masters: RunningMaster[] = [];
after(() => Promise.all(masters.map((master) => master.stop())));

test('aborting config.signal stops the master gracefully, as SIGTERM does', async () => {
  const master = await startMaster(fixture('embedded.mjs'));
  masters.push(master);
  const child = master.events.find((event) => event.type === 'child-ready')!.pid;
  master.process.send('abort');
  assert.deepEqual(await exitOf(master), { code: 0, signal: null });
  const draining = master.events.find((event) => event.type === 'child-draining' && event.pid === child);
  assert.ok(draining, 'the child was drained');
  assert.ok(master.events.some((event) => event.type === 'child-exited' && event.pid === child && event.expected));
  assert.ok(master.events.some((event) => event.type === 'master-exiting' && event.reason === 'shutdown' && event.code === 0));
});

test('a signal aborted before run() stops the master before it forks, with the code SIGTERM gives', async () => {
  const master = await startMaster(fixture('embedded.mjs'), { env: { ABORT_AT_START: '1' }, noWait: true });
  masters.push(master);
  assert.deepEqual(await exitOf(master), { code: 143, signal: null });
  assert.ok(master.events.some((event) => event.type === 'master-exiting' && event.reason === 'shutdown' && event.code === 143));
  assert.ok(!master.events.some((event) => event.type === 'child-forked'), 'no child was forked');
});

test('config.signal must be an AbortSignal', () => {
  assert.throws(() => normalizeConfig({ program() {}, address: ':0', signal: 'SIGTERM' }), {
    code: 'ERR_OVERSEER_INVALID_CONFIG',
    message: /config\.signal must be an AbortSignal.*got "SIGTERM"/,
  });
  assert.equal(normalizeConfig({ program() {}, address: ':0', signal: AbortSignal.abort() }).signal?.aborted, true);
});

test('without a master (in-process), aborting config.signal aborts state.shutdown', async () => {
  // `-e` has no entry script to fork, so run() runs the program in this process.
  const script = `
    import { run } from ${JSON.stringify(pathToFileURL(path.join(root, 'dist/src/index.js')).href)};
    const stop = new AbortController();
    await run({ address: '127.0.0.1:0', noWarn: true, signal: stop.signal, async program(state) {
      state.shutdown.addEventListener('abort', () => { console.log('shutdown', state.enabled); process.exit(0); });
      stop.abort();
    } });
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 15_000 * scale });
  assert.equal(stdout.trim(), 'shutdown false');
});
