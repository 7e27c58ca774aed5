/**
 * A real node:http release server on 127.0.0.1 for tests and the demo: publish bytes (or a
 * generated body of any size, streamed, never held in memory) at a path, with or without
 * ETag/Last-Modified, gzip, a .sha256 and a .minisig sidecar, and make a path misbehave on demand
 * (break off, stall, drip). It can listen on [::1] (a second origin for redirect tests) or speak TLS.
 */
import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { posix } from 'node:path';
import { gzipSync } from 'node:zlib';

/**
 * How a path answers. 'no-headers': no ETag or Last-Modified. 'no-head': HEAD gets 405.
 * 'drop-mid-body': GET sends half the body, then the socket is destroyed. 'stall-mid-body':
 * GET sends half the body, then nothing. 'slow': no response at all until close().
 * 'status-500': every request gets 500. 'drip' (set with drip()): GET sends the body a few bytes at a time.
 */
export type ReleaseMode = 'normal' | 'no-headers' | 'no-head' | 'drop-mid-body' | 'stall-mid-body' | 'slow' | 'status-500' | 'drip';

export interface ReleaseServerOptions {
  /** The loopback address to listen on. @default '127.0.0.1' */
  readonly host?: '127.0.0.1' | '::1';
  /** Serve https: with this key and certificate (test/fixtures/tls holds one for 127.0.0.1). */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
}

export interface PublishOptions {
  /** Send an ETag (unique per publish). @default true */
  readonly etag?: boolean;
  /** Send Last-Modified: true for "now" (one second later than the last publish at this path at least), or a given date. @default true */
  readonly lastModified?: boolean | Date;
  /** gzip the body before publishing: the published bytes (and their sha256) are the compressed ones. @default false */
  readonly gzip?: boolean;
  /** A Content-Encoding header to send (the bytes are sent as they are). */
  readonly contentEncoding?: string;
  /** Also publish `<path>.sha256` as sha256sum output of the published bytes. @default false */
  readonly sha256?: boolean;
  /** Also publish this text as `<path>.minisig`. */
  readonly signature?: string;
}

export interface PublishedRelease {
  readonly path: string;
  readonly url: string;
  /** Bytes as published (compressed when gzip). */
  readonly size: number;
  /** sha256 hex of the bytes as published (computed on first read for generated bodies). */
  readonly sha256: string;
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
}

export interface RecordedRequest {
  readonly method: string;
  /** The request target as received (a path, or an absolute URL through a forward proxy). */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** Date.now() when its headers arrived. */
  readonly at: number;
  /** The connection it came on (the client's port): a reused keep-alive connection shows up twice. */
  readonly connection: number;
  /** Filled in as it ends: the status sent, and 'finished' (sent whole) or 'closed' (the socket went first). */
  status?: number;
  ended?: { readonly how: 'finished' | 'closed'; readonly at: number };
}

export interface ReleaseServer {
  /** http://127.0.0.1:<port> */
  readonly origin: string;
  url(path: string): string;
  publish(path: string, body: Buffer | string, options?: PublishOptions): PublishedRelease;
  /** Publishes `size` deterministic bytes (from `seed`) that are generated while they are sent. */
  publishGenerated(path: string, size: number, options?: Omit<PublishOptions, 'gzip'> & { readonly seed?: number }): PublishedRelease;
  unpublish(path: string): void;
  setMode(path: string, mode: ReleaseMode): void;
  /** Answers `from` with a 302 to `to` (a path on this server or an absolute URL). */
  redirect(from: string, to: string): void;
  /** Makes GET of `path` send `bytes` bytes every `every` ms (a slow or hostile link); undo with setMode(path, 'normal'). */
  drip(path: string, drip: { readonly every: number; readonly bytes?: number }): void;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  /**
   * The request log for a failing test, one line each from request `from` on: when it came
   * (UTC time of day, to line up with a master's events), on which connection, the status sent and how it ended
   * (or 'open' while it has not), and when each connection opened and closed.
   */
  log(from?: number): string;
  /** Resolves with the first request (already received or still to come) that matches. */
  waitForRequest(match: (request: RecordedRequest) => boolean, timeout?: number): Promise<RecordedRequest>;
  close(): Promise<void>;
}

interface Entry {
  readonly size: number;
  /** Bytes [0, end) of the body, in chunks. */
  readonly chunks: (end: number) => Iterable<Buffer>;
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
  readonly contentEncoding: string | undefined;
}

const BLOCK_SIZE = 64 * 1024;

export async function startReleaseServer(options: ReleaseServerOptions = {}): Promise<ReleaseServer> {
  const entries = new Map<string, Entry>();
  const drips = new Map<string, { readonly every: number; readonly bytes: number }>();
  const modes = new Map<string, ReleaseMode>();
  const redirects = new Map<string, string>();
  const lastSeconds = new Map<string, number>();
  const requests: RecordedRequest[] = [];
  const connections: Array<{ readonly port: number; readonly at: number; closed?: number }> = [];
  const arrivals = new EventEmitter();
  const startedAt = Date.now();
  let generation = 0;

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const record: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, at: Date.now(), connection: req.socket.remotePort ?? 0 };
    requests.push(record);
    const ended = (how: 'finished' | 'closed') => () => {
      if (res.headersSent) record.status ??= res.statusCode;
      record.ended ??= { how, at: Date.now() };
    };
    res.once('finish', ended('finished'));
    res.once('close', ended('closed'));
    arrivals.emit('request', record);
    const target = normalize(new URL(req.url ?? '/', 'http://localhost').pathname);
    void answer(target, req.method ?? 'GET', res).catch(() => res.destroy());
  };
  const server = options.tls === undefined ? createHttpServer(onRequest) : createHttpsServer(options.tls, onRequest);

  async function answer(target: string, method: string, res: ServerResponse): Promise<void> {
    const mode = modes.get(target) ?? 'normal';
    const location = redirects.get(target);
    if (mode === 'slow') return;
    if (mode === 'status-500') return void res.writeHead(500, { 'content-type': 'text/plain' }).end('broken on purpose\n');
    if (location !== undefined) return void res.writeHead(302, { location }).end();
    const entry = entries.get(target);
    if (entry === undefined) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not published\n');
    if (method === 'HEAD' && mode === 'no-head') return void res.writeHead(405, { allow: 'GET' }).end();
    if (method !== 'HEAD' && method !== 'GET') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'content-length': entry.size,
    };
    if (mode !== 'no-headers' && entry.etag !== undefined) headers['etag'] = entry.etag;
    if (mode !== 'no-headers' && entry.lastModified !== undefined) headers['last-modified'] = entry.lastModified;
    if (entry.contentEncoding !== undefined) headers['content-encoding'] = entry.contentEncoding;
    res.writeHead(200, headers);
    if (method === 'HEAD') return void res.end();
    const drip = mode === 'drip' ? drips.get(target) : undefined;
    if (drip !== undefined) return sendDrip(res, Buffer.concat([...entry.chunks(entry.size)]), drip);
    const breaks = mode === 'drop-mid-body' || mode === 'stall-mid-body';
    const end = breaks ? Math.floor(entry.size / 2) : entry.size;
    for (const chunk of entry.chunks(end)) {
      if (res.destroyed) return;
      if (!res.write(chunk)) await drained(res);
    }
    if (mode === 'drop-mid-body') {
      await new Promise<void>((resolve) => res.write('', () => resolve()));
      res.socket?.destroy();
    } else if (mode !== 'stall-mid-body') {
      res.end();
    }
  }

  server.on('connection', (socket) => {
    const entry: { port: number; at: number; closed?: number } = { port: socket.remotePort ?? 0, at: Date.now() };
    connections.push(entry);
    socket.once('close', () => (entry.closed = Date.now()));
  });

  /** The request log (see ReleaseServer.log). */
  function log(from = 0): string {
    const ms = (at: number): string => new Date(at).toISOString().slice(11, 23);
    const lines = requests.slice(from).map((request, index) => {
      const outcome = request.ended === undefined ? 'open' : `${request.ended.how} ${ms(request.ended.at)}`;
      return `  #${from + index} ${ms(request.at)} ${request.method} ${request.path} conn :${request.connection} -> ${request.status ?? '-'} ${outcome}`;
    });
    const since = requests[from]?.at ?? 0;
    const sockets = connections
      .filter((connection) => (connection.closed ?? Infinity) >= since)
      .map((connection) => `  conn :${connection.port} opened ${ms(connection.at)}, ${connection.closed === undefined ? 'still open' : `closed ${ms(connection.closed)}`}`);
    return [`release server ${origin}, started ${new Date(startedAt).toISOString()}; requests from #${from} (${requests.length} in all):`, ...lines, 'its connections then:', ...sockets].join('\n');
  }

  const host = options.host ?? '127.0.0.1';
  server.listen(0, host);
  await once(server, 'listening');
  const scheme = options.tls === undefined ? 'http' : 'https';
  const origin = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${(server.address() as AddressInfo).port}`;

  function lastModifiedFor(path: string, option: boolean | Date | undefined): string | undefined {
    if (option === false) return undefined;
    if (option instanceof Date) return option.toUTCString();
    const second = Math.max(Math.floor(Date.now() / 1000), (lastSeconds.get(path) ?? 0) + 1);
    lastSeconds.set(path, second);
    return new Date(second * 1000).toUTCString();
  }

  function store(
    path: string,
    size: number,
    chunks: Entry['chunks'],
    sha256: () => string,
    options: PublishOptions,
  ): PublishedRelease {
    const key = normalize(path);
    generation += 1;
    const entry: Entry = {
      size,
      chunks,
      etag: options.etag === false ? undefined : `"r${generation}-${size}"`,
      lastModified: lastModifiedFor(key, options.lastModified),
      contentEncoding: options.contentEncoding,
    };
    entries.set(key, entry);
    let hex: string | undefined;
    const published: PublishedRelease = {
      path: key,
      url: origin + key,
      size,
      get sha256() {
        return (hex ??= sha256());
      },
      etag: entry.etag,
      lastModified: entry.lastModified,
    };
    if (options.sha256 === true) publish(`${key}.sha256`, `${published.sha256}  ${posix.basename(key)}\n`);
    if (options.signature !== undefined) publish(`${key}.minisig`, options.signature);
    return published;
  }

  function publish(path: string, body: Buffer | string, options: PublishOptions = {}): PublishedRelease {
    const raw = typeof body === 'string' ? Buffer.from(body) : body;
    const bytes = options.gzip === true ? gzipSync(raw) : raw;
    return store(path, bytes.length, (end) => [bytes.subarray(0, end)], () => createHash('sha256').update(bytes).digest('hex'), options);
  }

  function publishGenerated(
    path: string,
    size: number,
    options: Omit<PublishOptions, 'gzip'> & { readonly seed?: number } = {},
  ): PublishedRelease {
    const block = Buffer.alloc(BLOCK_SIZE);
    const seed = options.seed ?? 1;
    for (let index = 0; index < BLOCK_SIZE; index += 1) block[index] = (index * 31 + seed * 17 + (index >> 8)) & 0xff;
    function* chunks(end: number): Iterable<Buffer> {
      for (let offset = 0; offset < end; offset += BLOCK_SIZE) yield block.subarray(0, Math.min(BLOCK_SIZE, end - offset));
    }
    const sha256 = (): string => {
      const hash = createHash('sha256');
      for (const chunk of chunks(size)) hash.update(chunk);
      return hash.digest('hex');
    };
    return store(path, size, chunks, sha256, options);
  }

  return {
    origin,
    url: (path) => origin + normalize(path),
    publish,
    publishGenerated,
    unpublish: (path) => void entries.delete(normalize(path)),
    setMode: (path, mode) => void modes.set(normalize(path), mode),
    redirect: (from, to) => void redirects.set(normalize(from), to),
    drip(path, { every, bytes = 1 }) {
      drips.set(normalize(path), { every, bytes });
      modes.set(normalize(path), 'drip');
    },
    requests,
    log,
    waitForRequest(match, timeout = 10_000) {
      const seen = requests.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          arrivals.off('request', onRequest);
          reject(new Error(`no matching request within ${timeout} ms`));
        }, timeout);
        function onRequest(request: RecordedRequest): void {
          if (!match(request)) return;
          clearTimeout(timer);
          arrivals.off('request', onRequest);
          resolve(request);
        }
        arrivals.on('request', onRequest);
      });
    },
    async close() {
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}

function normalize(path: string): string {
  return path.startsWith('/') ? path : `/${path}`;
}

/** Sends `body` a few bytes at a time until it is all sent or the client goes away. */
async function sendDrip(res: ServerResponse, body: Buffer, { every, bytes }: { every: number; bytes: number }): Promise<void> {
  res.flushHeaders();
  let wake = (): void => undefined;
  res.once('close', () => wake());
  for (let offset = 0; offset < body.length && !res.destroyed; offset += bytes) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, every);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    if (!res.destroyed) res.write(body.subarray(offset, offset + bytes));
  }
  if (!res.destroyed) res.end();
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
