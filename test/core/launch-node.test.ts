/**
 * The Node launcher's channel to its child. A child closes its channel only on its way out; a
 * message the master wrote after that (a probation's end, when the master stopped during one)
 * failed with EPIPE and was printed as a warning at the end of `npm run demo`. Now it is a debug
 * line: the child's exit is what the master reports.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { NodeLauncher } from '../../src/core/launch/node.ts';
import { tempDir } from '../helpers/master.ts';
import { exitCodeOf } from '../helpers/exit.ts';

/** Blocks this thread (its event loop too) until `file` exists, at most `ms`. */
function blockUntilExists(file: string, ms: number): void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + ms;
  while (!fs.existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`${file} did not appear within ${ms} ms`);
    Atomics.wait(cell, 0, 0, 5);
  }
}

test('a message that meets the closed channel of a leaving child is no warning, even before the master has seen the close', async () => {
  const dir = tempDir('overseer-launch-');
  const marker = path.join(dir, 'disconnected');
  const script = path.join(dir, 'child.mjs');
  // Says it is up; on the drain message closes its channel, says so in a file, and exits a little later.
  fs.writeFileSync(script, `
    import fs from 'node:fs';
    process.on('message', (message) => {
      if (message?.type !== 'drain') return;
      process.once('disconnect', () => { fs.writeFileSync(${JSON.stringify(marker)}, ''); setTimeout(() => {}, 300); });
      process.disconnect();
    });
    process.send('up');
  `);
  const warnings: string[] = [];
  const debug: string[] = [];
  const launcher = new NodeLauncher({ debug: (message) => debug.push(message), warn: (message) => warnings.push(message) });
  const launched = launcher.launch(
    { generation: 1, listeners: [], sha256: 'test', bundlePath: script, terminateTimeout: 1_000 },
    { ready() {}, failed() {}, restart() {} },
  );
  const child = launched.process;
  try {
    await new Promise<void>((resolve) => child.once('message', () => resolve()));
    launched.drain('shutdown');
    // The child's channel is closed, and this process has not yet read that: what it writes now
    // goes to a closed pipe.
    blockUntilExists(marker, 20_000);
    assert.equal(child.connected, true, 'the master has not seen the close yet');
    launched.probation?.(false);
    assert.equal(await exitCodeOf(child, 'the drained child'), 0);
    assert.deepEqual(warnings, []);
    assert.ok(debug.some((line) => /closed its channel before a probation message reached it: write EPIPE/.test(line)), debug.join('\n'));
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
