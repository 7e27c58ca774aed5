/**
 * The HTTP load client of `overseer check`, `overseer/testing` and the benchmarks, on raw sockets
 * so it costs little CPU on a 2-core machine; Node built-ins only.
 * Open loop: requests go out on a fixed schedule (rate per second) whatever the server does, and
 * each latency counts from the request's scheduled time, so a stall is never hidden by the
 * client waiting (no coordinated omission). Closed loop: `concurrency` loops, for saturation.
 */
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Epoch ms with sub-ms precision, comparable with the `at` (Date.now()) of overseer's events. */
export const now = (): number => performance.timeOrigin + performance.now();

export type FailureKind = 'refused' | 'reset' | 'timeout' | 'status' | 'other';

/** Index into LoadRecords.kind: 0 is an answered 2xx request. */
export const KINDS: readonly ('ok' | FailureKind)[] = ['ok', 'refused', 'reset', 'timeout', 'status', 'other'];

export interface LoadSpec {
  readonly port: number;
  readonly host?: string;
  readonly path?: string;
  readonly keepAlive: boolean;
  /** Open loop: requests per second. */
  readonly rate?: number;
  /** Closed loop: loops that each send the next request once the previous one is done. */
  readonly concurrency?: number;
  readonly durationMs: number;
  /** Cap on open sockets (keep-alive) or requests in flight (no keep-alive); beyond it requests queue in the client. @default 256 */
  readonly maxConnections?: number;
  /** A request not answered this long after its scheduled time fails as 'timeout'. @default 3000 */
  readonly timeoutMs?: number;
  /** Idle keep-alive sockets are closed by the client after this, before Node's 5 s server timeout can race it. @default 4000 */
  readonly idleTimeoutMs?: number;
}

export interface LoadRecords {
  /** Epoch ms (sub-ms precision) each request was scheduled. */
  readonly scheduled: number[];
  /** Done minus scheduled, ms (for failures: when the failure was seen). */
  readonly latency: number[];
  /** Index into KINDS. */
  readonly kind: number[];
  /** Pid the answer named (the apps answer with their pid), 0 when not answered. */
  readonly pid: number[];
  /** 1 when the request went out on a connection opened for it, 0 on a reused keep-alive one. */
  readonly fresh: number[];
  /** First failure detail per kind, for the report. */
  readonly examples: Partial<Record<FailureKind, string>>;
  /**
   * Idle keep-alive connections the server closed (no request out on them), when (epoch ms) and
   * which pid gave their last answer. A server that does this at its stop signal resets a client
   * that reuses the connection in that instant; seen here whether or not a request lost the race.
   */
  readonly idleClosed: readonly IdleClose[];
  readonly startedAt: number;
  readonly endedAt: number;
  /** Client event-loop delay, ms: how late the client itself was. */
  readonly clientLagP99: number;
  readonly clientLagMax: number;
}

export interface IdleClose {
  readonly at: number;
  readonly pid: number;
}

interface Request {
  readonly index: number;
  readonly scheduled: number;
  sentAt: number;
  /** Closed loop: starts the loop's next request. */
  readonly next: (() => void) | undefined;
}

interface Conn {
  readonly socket: net.Socket;
  busy: Request | undefined;
  chunks: Buffer[];
  buffered: number;
  headerEnd: number;
  status: number;
  /** -1: not known yet; -2: chunked; -3: read until the server closes. */
  bodyLength: number;
  closeAfter: boolean;
  idleSince: number;
  closed: boolean;
  /** The pid of the last answer on this connection, 0 before one. */
  pid: number;
}

function classify(error: NodeJS.ErrnoException): FailureKind {
  if (error.code === 'ECONNREFUSED') return 'refused';
  if (error.code === 'ECONNRESET' || error.code === 'EPIPE') return 'reset';
  if (error.code === 'ETIMEDOUT') return 'timeout';
  return 'other';
}

const HEADER_END = Buffer.from('\r\n\r\n');
const CHUNKED = -2;
const UNTIL_CLOSE = -3;

/** Where a chunked body that starts at `from` ends (after its last chunk and trailers), -1 while incomplete, -2 when malformed. */
function chunkedEnd(buffer: Buffer, from: number): number {
  let at = from;
  for (;;) {
    const line = buffer.indexOf('\r\n', at, 'latin1');
    if (line === -1) return -1;
    const size = Number.parseInt(buffer.toString('latin1', at, line), 16);
    if (!/^[0-9a-f]+(;.*)?$/i.test(buffer.toString('latin1', at, line)) || !Number.isFinite(size)) return -2;
    if (size === 0) {
      const end = buffer.indexOf(HEADER_END, line);
      if (end !== -1) return end + 4;
      // No trailers: the last chunk's line is followed by one empty line.
      return buffer.length >= line + 4 && buffer.toString('latin1', line, line + 4) === '\r\n\r\n' ? line + 4 : -1;
    }
    at = line + 2 + size + 2;
    if (at > buffer.length) return -1;
  }
}

/** Runs one bounded load and resolves with every request's record once all are answered or failed. */
export function runLoad(spec: LoadSpec): { readonly done: Promise<LoadRecords>; stop(): void } {
  const host = spec.host ?? '127.0.0.1';
  const maxConnections = spec.maxConnections ?? 256;
  const timeoutMs = spec.timeoutMs ?? 3000;
  const idleTimeoutMs = spec.idleTimeoutMs ?? 4000;
  const requestBytes = Buffer.from(
    `GET ${spec.path ?? '/'} HTTP/1.1\r\nHost: ${host}:${spec.port}\r\n${spec.keepAlive ? '' : 'Connection: close\r\n'}\r\n`,
  );
  const scheduled: number[] = [];
  const latency: number[] = [];
  const kind: number[] = [];
  const pid: number[] = [];
  const fresh: number[] = [];
  const examples: Partial<Record<FailureKind, string>> = {};
  const idleClosed: IdleClose[] = [];
  const idle: Conn[] = [];
  const open = new Set<Conn>();
  const pending: Request[] = [];
  let outstanding = 0;
  let sending = true;
  let resolveDone!: () => void;
  const allDone = new Promise<void>((resolve) => (resolveDone = resolve));
  const lagResolution = 2;
  const lag = monitorEventLoopDelay({ resolution: lagResolution });
  lag.enable();

  const finish = (request: Request, result: number, detail?: string) => {
    if (latency[request.index] !== -1) return;
    latency[request.index] = now() - request.scheduled;
    kind[request.index] = result;
    if (result !== 0) {
      const name = KINDS[result] as FailureKind;
      examples[name] ??= detail ?? name;
    }
    outstanding--;
    if (request.next) setImmediate(request.next);
    if (!sending && outstanding === 0) resolveDone();
  };

  const fail = (conn: Conn, what: FailureKind, detail: string) => {
    const request = conn.busy;
    conn.busy = undefined;
    if (request) finish(request, KINDS.indexOf(what), detail);
  };

  const resetParser = (conn: Conn) => {
    conn.chunks = [];
    conn.buffered = 0;
    conn.headerEnd = -1;
    conn.status = 0;
    conn.bodyLength = -1;
    conn.closeAfter = !spec.keepAlive;
  };

  const pump = () => {
    while (pending.length > 0) {
      const next = pending[0] as Request;
      if (!dispatch(next, false)) return;
      pending.shift();
    }
  };

  const release = (conn: Conn, closeAfter: boolean) => {
    if (conn.closed) return;
    if (closeAfter) {
      conn.closed = true;
      conn.socket.destroy();
      return;
    }
    conn.idleSince = now();
    idle.push(conn);
    pump();
  };

  const onData = (conn: Conn, data: Buffer) => {
    const request = conn.busy;
    if (!request) {
      conn.closed = true;
      conn.socket.destroy();
      return;
    }
    conn.chunks.push(data);
    conn.buffered += data.length;
    const buffer = conn.chunks.length === 1 ? data : Buffer.concat(conn.chunks, conn.buffered);
    if (conn.chunks.length > 1) conn.chunks = [buffer];
    if (conn.headerEnd === -1) {
      const end = buffer.indexOf(HEADER_END);
      if (end === -1) return;
      conn.headerEnd = end + 4;
      const head = buffer.toString('latin1', 0, end);
      conn.status = Number(head.slice(9, 12));
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const bodiless = conn.status === 204 || conn.status === 304 || (conn.status >= 100 && conn.status < 200);
      conn.bodyLength = bodiless ? 0 : length ? Number(length[1]) : /\r\ntransfer-encoding:[^\r]*chunked/i.test(head) ? CHUNKED : UNTIL_CLOSE;
      if (/\r\nconnection:\s*close/i.test(head) || !head.startsWith('HTTP/1.1')) conn.closeAfter = true;
      // A body that ends when the server closes: 'close' completes it.
      if (conn.bodyLength === UNTIL_CLOSE) conn.closeAfter = true;
    }
    const chunkEnd = conn.bodyLength === CHUNKED ? chunkedEnd(buffer, conn.headerEnd) : -1;
    if (chunkEnd === -2) {
      fail(conn, 'other', 'malformed chunked body');
      conn.closed = true;
      conn.socket.destroy();
      return;
    }
    const complete = conn.bodyLength >= 0 ? buffer.length - conn.headerEnd >= conn.bodyLength : chunkEnd >= 0;
    if (complete) {
      const ok = conn.status >= 200 && conn.status < 300;
      conn.busy = undefined;
      pid[request.index] = Number.parseInt(buffer.toString('latin1', conn.headerEnd, conn.headerEnd + Math.min(conn.bodyLength, 12)), 10) || 0;
      conn.pid = pid[request.index] as number;
      finish(request, ok ? 0 : KINDS.indexOf('status'), `status ${conn.status}`);
      const closeAfter = conn.closeAfter;
      resetParser(conn);
      release(conn, closeAfter);
    }
  };

  const connect = (request: Request) => {
    const socket = net.connect({ port: spec.port, host });
    socket.setNoDelay(true);
    const conn: Conn = {
      socket, busy: request, chunks: [], buffered: 0, headerEnd: -1, status: 0, bodyLength: -1,
      closeAfter: !spec.keepAlive, idleSince: 0, closed: false, pid: 0,
    };
    // The server ended or reset a connection the client still kept for its next request.
    const closedByServer = () => {
      if (!conn.closed && !conn.busy && conn.idleSince > 0) idleClosed.push({ at: now(), pid: conn.pid });
      conn.closed = true;
    };
    open.add(conn);
    fresh[request.index] = 1;
    request.sentAt = now();
    socket.write(requestBytes);
    socket.on('data', (data: Buffer) => onData(conn, data));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      closedByServer();
      fail(conn, classify(error), `${error.code ?? ''} ${error.message}`);
    });
    socket.on('end', () => {
      closedByServer();
      if (!conn.busy) socket.destroy();
    });
    socket.on('close', () => {
      conn.closed = true;
      open.delete(conn);
      const at = idle.indexOf(conn);
      if (at !== -1) idle.splice(at, 1);
      if (conn.busy && conn.bodyLength === UNTIL_CLOSE) {
        const request = conn.busy;
        conn.busy = undefined;
        const ok = conn.status >= 200 && conn.status < 300;
        finish(request, ok ? 0 : KINDS.indexOf('status'), `status ${conn.status}`);
      }
      fail(conn, 'reset', conn.headerEnd === -1 ? 'closed before a response' : 'closed mid-response');
      pump();
    });
  };

  /** Sends now, or (when `queue`) queues; false when it could not send and did not queue. */
  const dispatch = (request: Request, queue: boolean): boolean => {
    if (spec.keepAlive) {
      for (;;) {
        const conn = idle.pop();
        if (!conn) break;
        if (conn.closed) continue;
        conn.busy = request;
        request.sentAt = now();
        conn.socket.write(requestBytes);
        return true;
      }
    }
    if (open.size < maxConnections) {
      connect(request);
      return true;
    }
    if (queue) pending.push(request);
    return queue;
  };

  const issue = (at: number, next?: () => void) => {
    const request: Request = { index: scheduled.length, scheduled: at, sentAt: 0, next };
    scheduled.push(at);
    latency.push(-1);
    kind.push(0);
    pid.push(0);
    fresh.push(0);
    outstanding++;
    if (pending.length > 0) pending.push(request);
    else dispatch(request, true);
  };

  const sweep = setInterval(() => {
    const t = now();
    for (const conn of open) {
      if (conn.busy && t - conn.busy.scheduled > timeoutMs) {
        fail(conn, 'timeout', `no answer within ${timeoutMs} ms`);
        conn.closed = true;
        conn.socket.destroy();
      }
    }
    while (pending.length > 0 && t - (pending[0] as Request).scheduled > timeoutMs) {
      finish(pending.shift() as Request, KINDS.indexOf('timeout'), `queued in the client over ${timeoutMs} ms`);
    }
    for (let index = idle.length - 1; index >= 0; index--) {
      const conn = idle[index] as Conn;
      if (t - conn.idleSince > idleTimeoutMs) {
        idle.splice(index, 1);
        conn.closed = true;
        conn.socket.destroy();
      }
    }
  }, 50);

  const startedAt = now();
  const endAt = startedAt + spec.durationMs;
  let stopRequested = false;
  const stopSending = () => {
    if (!sending) return;
    sending = false;
    if (outstanding === 0) resolveDone();
  };

  if (spec.rate !== undefined) {
    const interval = 1000 / spec.rate;
    let sent = 0;
    const tick = () => {
      const t = now();
      while (!stopRequested && startedAt + sent * interval <= Math.min(t, endAt)) {
        issue(startedAt + sent * interval);
        sent++;
      }
      if (stopRequested || t >= endAt) stopSending();
      else setTimeout(tick, 1);
    };
    tick();
  } else {
    const loops = spec.concurrency ?? 16;
    const loop = () => {
      if (stopRequested || now() >= endAt) stopSending();
      else issue(now(), loop);
    };
    for (let index = 0; index < loops; index++) loop();
  }

  const done = allDone.then(() => {
    clearInterval(sweep);
    for (const conn of open) conn.socket.destroy();
    lag.disable();
    return {
      scheduled, latency, kind, pid, fresh, examples, idleClosed, startedAt, endedAt: now(),
      // The histogram records whole timer intervals: subtract the interval itself.
      clientLagP99: Math.max(0, lag.percentile(99) / 1e6 - lagResolution), clientLagMax: Math.max(0, lag.max / 1e6 - lagResolution),
    };
  });
  return {
    done,
    stop() {
      stopRequested = true;
      stopSending();
    },
  };
}

