/**
 * The listener hold of a handoff (src/core/drain.ts, LISTENER_HOLD_MS): the old child's HTTP
 * server keeps accepting 250 ms into its drain, and those connections are told to close; with
 * drainSpread 0, or for a plain net server, it stops accepting at once. Driven by events, not
 * time: the fixture reports its drain over a loopback connection and keeps the hold open until
 * the test releases it, and the new child is stopped (SIGSTOP) while the test connects, so the
 * old child is the only process that can accept.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import { fixture, scale, startMaster, type RunningMaster } from '../helpers/master.ts';

const masters: RunningMaster[] = [];
const stopped = new Set<number>();
after(() => Promise.all(masters.map((master) => master.stop())));

interface Report { pid: number; phase: 'drain' | 'stopped'; holdMs?: number }

/** A loopback server the fixture's children report to; `next` waits for a child's report. */
async function reports() {
  const seen: Report[] = [];
  const sockets = new Map<number, net.Socket>();
  const waiters = new Set<() => void>();
  const server = net.createServer((socket) => {
    let buffered = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        const report = JSON.parse(buffered.slice(0, end)) as Report;
        buffered = buffered.slice(end + 1);
        sockets.set(report.pid, socket);
        seen.push(report);
        for (const waiter of waiters) waiter();
      }
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const find = (pid: number, phase: Report['phase']) => seen.find((report) => report.pid === pid && report.phase === phase);
  return {
    port: (server.address() as net.AddressInfo).port,
    find,
    next(pid: number, phase: Report['phase'], timeoutMs = 15_000): Promise<Report> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`no '${phase}' report from child ${pid} within ${timeoutMs * scale} ms; seen ${JSON.stringify(seen)}`)); }, timeoutMs * scale);
        const check = () => {
          const report = find(pid, phase);
          if (!report) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(report);
        };
        waiters.add(check);
        check();
      });
    },
    release(pid: number) { sockets.get(pid)?.write('release\n'); },
    close() { for (const socket of sockets.values()) socket.destroy(); server.close(); },
  };
}

/** One keep-alive request on a fresh connection: who answered, and its Connection header. */
function askOnce(port: number): Promise<{ pid: number; connection: string | undefined }> {
  // A keep-alive agent of its own: without one the client asks for Connection: close itself.
  const agent = new http.Agent({ keepAlive: true });
  return new Promise<{ pid: number; connection: string | undefined }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve({ pid: Number(body), connection: res.headers.connection }));
    }).on('error', reject);
  }).finally(() => agent.destroy());
}

/**
 * A handoff in which the test connects once the old child has begun draining (while the new one
 * is stopped, so only the old one can accept), then once more after the old one stopped accepting.
 */
async function handoff(options: { drainSpread?: number; kind?: 'http' | 'net' }) {
  const channel = await reports();
  const master = await startMaster(fixture('listener-hold.mjs'), {
    env: { REPORT_PORT: String(channel.port), SERVER_KIND: options.kind ?? 'http', APP_OPTIONS: JSON.stringify(options.drainSpread === undefined ? {} : { drainSpread: options.drainSpread }) },
  });
  masters.push(master);
  try {
    const old = (await master.waitFor('child-ready')).pid;
    master.process.kill('SIGUSR2');
    const fresh = (await master.waitFor('child-ready', (event) => event.pid !== old)).pid;
    process.kill(fresh, 'SIGSTOP');
    stopped.add(fresh);
    const drain = await channel.next(old, 'drain');
    // Answered by the old child if it still accepts; otherwise it waits in the backlog for the new one.
    const during = askOnce(master.port);
    const first = await Promise.race([during.then(() => 'answer' as const), channel.next(old, 'stopped').then(() => 'stopped' as const)]);
    const stoppedWhileHolding = first === 'stopped';
    channel.release(old);
    await channel.next(old, 'stopped');
    process.kill(fresh, 'SIGCONT');
    stopped.delete(fresh);
    const atHold = await during;
    const afterHold = await askOnce(master.port);
    await master.waitFor('handoff-completed', (event) => event.from === old);
    return { old, fresh, holdMs: drain.holdMs, stoppedWhileHolding, atHold, afterHold };
  } finally {
    // A failed step may leave the new child stopped: it must run to drain when the master stops.
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already gone
      }
    }
    stopped.clear();
    await master.stop();
    channel.close();
  }
}

describe('the listener hold of a handoff', () => {
  test("an HTTP server keeps accepting into its drain: that connection is the old child's, told to close; the next is the new child's", async () => {
    const run = await handoff({});
    assert.equal(run.holdMs, 250);
    assert.equal(run.stoppedWhileHolding, false, 'the old child stopped accepting before the hold was released');
    assert.deepEqual(run.atHold, { pid: run.old, connection: 'close' }, 'the connection opened during the hold');
    assert.equal(run.afterHold.pid, run.fresh, 'the connection opened after the hold');
  });

  test('with drainSpread 0 the old child stops accepting at once', async () => {
    const run = await handoff({ drainSpread: 0 });
    assert.equal(run.holdMs, 0);
    assert.equal(run.stoppedWhileHolding, true);
    assert.equal(run.atHold.pid, run.fresh, 'a connection opened once the drain began went to the new child');
    assert.equal(run.afterHold.pid, run.fresh);
  });

  test('a plain net server stops accepting at once', async () => {
    const run = await handoff({ kind: 'net' });
    assert.equal(run.holdMs, 0);
    assert.equal(run.stoppedWhileHolding, true);
    assert.equal(run.atHold.pid, run.fresh, 'a connection opened once the drain began went to the new child');
    assert.equal(run.afterHold.pid, run.fresh);
  });
});
