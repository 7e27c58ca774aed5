import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { boundedExit } from './helpers/exit.ts';

test('a wait on a process that does not exit fails at its deadline, with what the process was doing', async () => {
  // Ignores SIGTERM and keeps waiting for events: a process that will not exit, as session 6's
  // CI met one (a master stuck in process.exit() on Node 24, docs/benchmarks.md §10).
  const child = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); process.send('up')"], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  try {
    await once(child, 'message');
    const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const exited = boundedExit(child, exit, 'stubborn', () => 'its report', 300);
    child.kill('SIGTERM');
    await assert.rejects(Promise.resolve(exited), (error: Error) => {
      assert.match(error.message, new RegExp(`^stubborn \\(pid ${child.pid}\\) did not exit within 300 ms`));
      // Its main thread (tid = pid) waits for events; the thread names differ between Node lines.
      assert.match(error.message, new RegExp(`threads of ${child.pid} \\(tid name state wait-channel\\):\\n  ${child.pid} \\S+ [RS] `));
      assert.match(error.message, /its report$/);
      return true;
    });
    child.kill('SIGKILL');
    assert.equal(await exited, null, 'a later wait still sees the exit');
  } finally {
    child.kill('SIGKILL');
  }
});
