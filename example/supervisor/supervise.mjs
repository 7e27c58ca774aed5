// Supervises three commands and prints what happens to them: a clock that runs until it is
// stopped, a job that fails on its first start and succeeds on the retry, and a command that
// does not exist. Run it with `node example/supervisor/supervise.mjs`; Ctrl-C stops it early.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Supervisor } from 'overseer/supervisor';

const node = process.execPath;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-example-'));
const flakyJob = `
  const fs = require('node:fs');
  const marker = ${JSON.stringify(path.join(scratch, 'started-once'))};
  if (!fs.existsSync(marker)) {
    fs.writeFileSync(marker, '');
    console.error('first start: failing');
    process.exit(1);
  }
  console.log('second start: done');
`;

const supervisor = new Supervisor()
  .add('clock', node, ['-e', 'setInterval(() => console.log(new Date().toISOString()), 300)'])
  .add('flaky', node, ['-e', flakyJob], { retries: 3, retryDelay: 200 })
  .add('missing', 'overseer-example-no-such-command');

supervisor.on('state', ({ id, state, previous, timestamp, status }) => {
  let detail = '';
  if (state === 'backoff') detail = ` (exit code ${status.exitCode}, retry in ${status.retryAt - timestamp} ms)`;
  if (status.error) detail = ` (${status.error.code})`;
  console.log(`[${id}] ${previous} -> ${state}${detail}`);
});
supervisor.on('log', ({ id, stream, text }) => console.log(`[${id}] ${stream}: ${text}`));

// Supervised processes run in their own process groups, so Ctrl-C reaches only this process.
const interrupted = new AbortController();
process.once('SIGINT', () => {
  interrupted.abort();
  void supervisor.stopAll();
});

const clockLines = supervisor.logs({ id: 'clock', signal: interrupted.signal });
const finalStatuses = supervisor.superviseAll();
let ticks = 0;
for await (const line of clockLines) if (++ticks === 3) break;
await supervisor.stop('clock');

for (const { id, state, exitCode, signal, attempts } of await finalStatuses) {
  console.log(`${id}: ${state}, exit code ${exitCode}, signal ${signal}, ${attempts} start(s)`);
}
fs.rmSync(scratch, { recursive: true, force: true });
