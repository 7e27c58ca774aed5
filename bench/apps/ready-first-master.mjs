// Bench-only ready-first master whose old child spreads its drain: like overseer (same held
// socket, fork → ready → drain), but the old child tells each keep-alive connection to close at a
// random moment within DRAIN_SPREAD_MS instead of on its very next response. Tests whether
// spreading the reconnects onto the cold new child flattens the handoff's latency.
import { fork } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const handle = net._createServerHandle('127.0.0.1', Number(process.env.PORT), 4);
if (typeof handle === 'number' || handle.getsockname({}) !== 0) throw new Error('bind failed');

const report = (event) => process.send?.({ event: { ...event, at: Date.now() } });
let current;
let restarting = false;

function start(onReady) {
  const child = fork(path.join(here, 'ready-first-child.mjs'), [], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
  report({ type: 'child-forked', pid: child.pid });
  child.on('message', (message) => {
    if (message === 'hello') child.send('listen', handle);
    else if (message === 'ready') {
      report({ type: 'child-ready', pid: child.pid });
      onReady?.();
    }
  });
  child.on('exit', (code, signal) => report({ type: 'child-exited', pid: child.pid, code, signal }));
  return child;
}

current = start();
process.on('message', (message) => {
  if (message !== 'restart' || restarting) return;
  restarting = true;
  const old = current;
  current = start(() => {
    report({ type: 'child-draining', pid: old.pid });
    old.send('drain');
    restarting = false;
  });
});
process.on('SIGTERM', () => {
  current.kill('SIGKILL');
  process.exit(0);
});
