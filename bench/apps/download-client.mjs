// One download of a URL to a file, the way a plain Node program would do it, for
// bench/download-clients.ts: the floor Node's own sockets set under the master's download.
//
//   node download-client.mjs <kind> <url> <file> [sha256]
//
// kinds:
//   http-get     node:http's get(), piped to a WriteStream
//   undici       undici's request() (the master's HTTP client), piped to a WriteStream
//   undici-wide  the same, its socket reading up to 256 KiB per read (net's `onread` buffer; by
//                default a stream socket reads at most 64 KiB per read)
//   raw-wide     a bare TCP socket reading up to 1 MiB per read, written with writeSync: one
//                request, the response's header skipped, no HTTP client at all (the ceiling)
// With "sha256", every body chunk is also hashed on the same thread, as the master does.
// Prints the ms from the request to the last byte written (the process's start-up left out).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';

const [kind, url, file, hashing] = process.argv.slice(2);
const hash = hashing === 'sha256' ? createHash('sha256') : undefined;
const tap = (body) => {
  if (hash) body.on('data', (chunk) => hash.update(chunk));
  return body;
};

/** net's onread: each read lands in one reused buffer; the copy goes on as the socket's data. */
const wideReads = (size) => ({
  buffer: Buffer.allocUnsafeSlow(size),
  callback(length, buffer) {
    return this.push(Buffer.copyBytesFrom(buffer, 0, length));
  },
});

async function rawWide() {
  const target = new URL(url);
  const fd = fs.openSync(file, 'w');
  await new Promise((resolve, reject) => {
    let header = Buffer.alloc(0);
    let left = -1;
    const take = (data) => {
      hash?.update(data);
      fs.writeSync(fd, data);
      left -= data.length;
      if (left > 0) return;
      socket.destroy();
      resolve();
    };
    const socket = net.connect({
      host: target.hostname,
      port: Number(target.port),
      onread: {
        buffer: Buffer.allocUnsafeSlow(1024 * 1024),
        callback(length, buffer) {
          const data = buffer.subarray(0, length);
          if (left >= 0) return take(data);
          header = Buffer.concat([header, data]);
          const end = header.indexOf('\r\n\r\n');
          if (end < 0) return;
          left = Number(/content-length: *(\d+)/i.exec(header.subarray(0, end).toString('latin1'))?.[1] ?? NaN);
          if (!Number.isSafeInteger(left)) return reject(new Error('no content-length'));
          take(header.subarray(end + 4));
        },
      },
    });
    socket.on('connect', () => socket.write(`GET ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: close\r\n\r\n`));
    socket.on('error', reject);
  });
  fs.closeSync(fd);
}

const started = performance.now();
if (kind === 'http-get') {
  const response = await new Promise((resolve, reject) => http.get(url, resolve).on('error', reject));
  await pipeline(tap(response), fs.createWriteStream(file));
} else if (kind === 'undici' || kind === 'undici-wide') {
  const dispatcher = new Agent(kind === 'undici-wide' ? { connect: { onread: wideReads(256 * 1024) } } : {});
  const { body } = await request(url, { dispatcher });
  await pipeline(tap(body), fs.createWriteStream(file));
  await dispatcher.close();
} else if (kind === 'raw-wide') {
  await rawWide();
} else {
  throw new Error(`unknown kind ${JSON.stringify(kind)}: http-get, undici, undici-wide or raw-wide`);
}
if (hash) hash.digest('hex');
process.stdout.write(`${performance.now() - started}\n`);
