// Bench-only emulation of the stop-then-start order (jpillora/overseer's): on 'restart' the old
// child closes its listener, and only then does this master fork the new one. It binds and holds
// the socket like overseer (net._createServerHandle) and its children drain with overseer's own
// Drainer, so the order is the only difference. Reports child events to its parent over IPC.
import { fork } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const handle = net._createServerHandle('127.0.0.1', Number(process.env.PORT), 4);
if (typeof handle === 'number') throw new Error(`bind failed: ${handle}`);
const errno = handle.getsockname({});
if (errno !== 0) throw new Error(`bind failed: ${errno}`);

const report = (event) => process.send?.({ event: { ...event, at: Date.now() } });
let current;
let restarting = false;

function start() {
  const child = fork(path.join(here, 'stop-start-child.mjs'), [], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
  report({ type: 'child-forked', pid: child.pid });
  child.on('message', (message) => {
    if (message === 'hello') child.send('listen', handle);
    else if (message === 'ready') report({ type: 'child-ready', pid: child.pid });
    else if (message === 'closed') {
      report({ type: 'listener-closed', pid: child.pid });
      if (restarting) {
        restarting = false;
        current = start();
      }
    }
  });
  child.on('exit', (code, signal) => report({ type: 'child-exited', pid: child.pid, code, signal }));
  return child;
}

current = start();
process.on('message', (message) => {
  if (message === 'restart' && !restarting) {
    restarting = true;
    current.send('drain');
  }
});
process.on('SIGTERM', () => {
  current.kill('SIGKILL');
  process.exit(0);
});
