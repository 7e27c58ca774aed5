/**
 * The open-loop client reads every way an HTTP/1.1 answer can end (length, chunked, close,
 * no body) and counts a malformed or missing answer as a failure, never as a success.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { KINDS, runLoad } from '../../src/check/load.ts';

const servers: net.Server[] = [];
after(() => {
  for (const server of servers) server.close();
});

/** A raw server that answers every request with `answer` (then closes when `close`). */
async function rawServer(answer: string, close: boolean): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('data', () => {
      socket.write(answer);
      if (close) socket.end();
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
