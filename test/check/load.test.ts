/**
 * The open-loop client reads every way an HTTP/1.1 answer can end (length, chunked, close,
 * no body) and counts a malformed or missing answer as a failure, never as a success; it notes
 * each idle keep-alive connection the server closes, and only those.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { KINDS, runLoad } from '../../src/check/load.ts';

const servers: net.Server[] = [];
after(() => {
  for (const server of servers) server.close();
});

/** A raw server that answers every request with `answer` (then closes when `close`, or `idleMs` after it). */
async function rawServer(answer: string, close: boolean, idleMs?: number): Promise<number> {
  const server = net.createServer((socket) => {
    let timer: NodeJS.Timeout | undefined;
    socket.on('close', () => clearTimeout(timer));
    socket.on('data', () => {
      clearTimeout(timer);
      socket.write(answer);
      if (close) socket.end();
      else if (idleMs !== undefined) timer = setTimeout(() => socket.end(), idleMs);
    });
    socket.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

async function kindsFor(answer: string, close: boolean, keepAlive = true): Promise<string[]> {
  const port = await rawServer(answer, close);
  const records = await runLoad({ port, keepAlive, rate: 40, durationMs: 250, timeoutMs: 2000 }).done;
  assert.ok(records.kind.length >= 5);
  return [...new Set(records.kind.map((kind) => KINDS[kind] as string))];
}

test('content-length, chunked, 204 and read-to-close answers count as answered', async () => {
  assert.deepEqual(await kindsFor('HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc', false), ['ok']);
  assert.deepEqual(await kindsFor('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n', false), ['ok']);
  assert.deepEqual(await kindsFor('HTTP/1.1 204 No Content\r\n\r\n', false), ['ok']);
  assert.deepEqual(await kindsFor('HTTP/1.0 200 OK\r\n\r\nbody until close', true, false), ['ok']);
});

test('a non-2xx is a status failure; a malformed chunked body and a close before any answer are failures', async () => {
  assert.deepEqual(await kindsFor('HTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n', false), ['status']);
  assert.deepEqual(await kindsFor('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', false), ['other']);
  assert.deepEqual(await kindsFor('', true), ['reset']);
});

test('idle keep-alive connections the server closes are noted with the pid that last answered on them', async () => {
  // 4 requests a second, each on the idle connection the last one left, which the server ends
  // 50 ms after each answer; the client's own idle timeout (4 s) never comes first.
  const closing = await rawServer('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n4321', false, 50);
  const records = await runLoad({ port: closing, keepAlive: true, rate: 4, durationMs: 1000, timeoutMs: 2000 }).done;
  assert.ok(records.idleClosed.length >= 2, `idle closes: ${records.idleClosed.length}`);
  assert.ok(records.idleClosed.every(({ pid, at }) => pid === 4321 && at >= records.startedAt && at <= records.endedAt));
  assert.ok(records.kind.every((kind) => KINDS[kind] === 'ok'));

  // The same answers on connections the server keeps, and on ones it closes with the answer itself: no idle close.
  const keeping = await rawServer('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n4321', false);
  assert.deepEqual((await runLoad({ port: keeping, keepAlive: true, rate: 4, durationMs: 1000, timeoutMs: 2000 }).done).idleClosed, []);
  const answerAndClose = await rawServer('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 4\r\n\r\n4321', true);
  assert.deepEqual((await runLoad({ port: answerAndClose, keepAlive: true, rate: 4, durationMs: 1000, timeoutMs: 2000 }).done).idleClosed, []);
});
