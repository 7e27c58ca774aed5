// The echo-token check runs a staged release: nothing it starts may outlive the check.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { isAlive } from '../../support/process.ts';
import { runEchoCheck } from '../../src/upgrade/verify.ts';
import { tempDir, until } from '../helpers/master.ts';

const dir = tempDir('overseer-echo-check-');
const leftovers: number[] = [];
after(() => {
  for (const pid of leftovers) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A release that starts a background program (as a shell without `exec` does) and records its pid. */
function release(name: string, then: string): { file: string; pid: () => number } {
  const file = path.join(dir, name);
  const pidFile = `${file}.pid`;
  fs.writeFileSync(file, `sleep 30 &\necho $! > ${JSON.stringify(pidFile)}\n${then}\n`);
  return {
    file,
    pid: () => {
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      leftovers.push(pid);
      return pid;
    },
  };
}

test('a release that answers and exits passes at once, and what it left running is ended', async () => {
  const answering = release('answers.sh', 'echo "$OVERSEER_BIN_CHECK"');
  const started = performance.now();
  const answer = await runEchoCheck({ file: answering.file, command: 'sh', args: [answering.file], timeout: 20_000 });
  assert.equal(answer.version, null);
  // The background sleep holds the output pipes: the check must not wait for it to end.
  assert.ok(performance.now() - started < 15_000, 'the check waited for the background program');
  const pid = answering.pid();
  await until('the background program to be ended', () => (isAlive(pid) ? undefined : true), 5_000);
});

test('a release that never answers is ended at the timeout with everything it started', async () => {
  const hanging = release('hangs.sh', 'wait');
  const started = performance.now();
  await assert.rejects(runEchoCheck({ file: hanging.file, command: 'sh', args: [hanging.file], timeout: 500 }), /no answer within 500 ms/);
  assert.ok(performance.now() - started < 15_000, 'the verdict waited for the background program');
  const pid = hanging.pid();
  await until('the background program to be ended', () => (isAlive(pid) ? undefined : true), 5_000);
});
