/**
 * The control socket of `overseer run`: a unix socket only its owner can open (mode 0600), one
 * JSON request line ({"cmd": …}) and one JSON response line per connection. The master side
 * answers status, restart, stop, reopen and upgrade; the client side is what `overseer ctl` sends.
 */
import fs from 'node:fs';
import net from 'node:net';
import { OverseerError, describeError } from '../errors.js';
import type { Log } from '../events.js';
import type { HandoffResult, MasterStatus } from '../core/master.js';

export const CONTROL_COMMANDS = ['status', 'restart', 'stop', 'reopen', 'upgrade'] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

export type ControlResponse =
  | { readonly ok: true; readonly [field: string]: unknown }
  | { readonly ok: false; readonly error: string; readonly code: string };

/** What the control server needs of the master (Master has it all). */
export interface ControlTarget {
  status(): MasterStatus;
  handoff(reason: string): Promise<HandoffResult>;
  shutdown(signal: NodeJS.Signals | undefined): void;
  forward(signal: NodeJS.Signals): void;
  /** Polls the release source now; false when the master has none. */
  pollNow(): boolean;
}

export interface ControlServerOptions {
  readonly path: string;
  /** The master, once it has started; until then requests are answered "still starting". */
  readonly master: () => ControlTarget | undefined;
  /** What `reopen` forwards to the serving child. */
  readonly reopenSignal: NodeJS.Signals;
  /** Fields added to the status answer (listener names, fetcher). */
  readonly describe?: () => Readonly<Record<string, unknown>>;
  readonly log?: Log;
}

export interface ControlServer {
  readonly path: string;
  /** Stops answering, drops open connections and removes the socket file (synchronous, so it can run on process exit). */
  close(): void;
}

/** A request line longer than this is not a control request. */
const MAX_REQUEST_BYTES = 4096;
/** A connection must send its request within this. */
const REQUEST_TIMEOUT = 10_000;

function failure(error: string, code = 'ERR_OVERSEER_CONTROL_FAILED'): ControlResponse {
  return { ok: false, error, code };
}

async function answer(options: ControlServerOptions, cmd: unknown): Promise<ControlResponse> {
  const master = options.master();
  if (!master) return failure('the master is still starting; try again in a moment');
  switch (cmd) {
    case 'status':
      return { ok: true, status: { ...master.status(), ...options.describe?.() } };
    case 'restart': {
      const result = await master.handoff('ctl');
      return result.ok ? { ok: true, pid: result.pid } : failure(result.error.message, result.error.code);
    }
    case 'stop':
      return { ok: true, pid: process.pid };
    case 'reopen': {
      const serving = master.status().children.find((child) => child.serving && child.phase !== 'exited');
      if (!serving) return failure(`no child is serving; ${options.reopenSignal} was not sent`);
      master.forward(options.reopenSignal);
      return { ok: true, signal: options.reopenSignal, pid: serving.pid };
    }
    case 'upgrade':
      if (!master.pollNow()) return failure('no fetcher: this master was started without a release source; add "fetch" to its config file, or --fetch-url / --fetch-file');
      return { ok: true };
    default:
      return failure(`unknown command ${JSON.stringify(cmd)}; the commands are ${CONTROL_COMMANDS.join(', ')}`);
  }
}

/**
 * Makes `socketPath` free for a new socket: nothing there, or a socket file nothing answers on
 * (a master killed with SIGKILL left it), which is removed. Throws when another master answers
 * there, or the path is something else.
 */
export async function clearStaleSocket(socketPath: string): Promise<void> {
  const stat = await fs.promises.lstat(socketPath).catch(() => undefined);
  if (!stat) return;
  if (!stat.isSocket()) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `the control socket path ${socketPath} exists and is not a socket; remove it or choose another path`, { subject: socketPath });
  }
  const holder = await askStatusPid(socketPath);
  if (holder !== undefined) {
    throw new OverseerError(
      'ERR_OVERSEER_MASTER_RUNNING',
      `another overseer master (pid ${holder === 0 ? 'unknown' : holder}) answers on the control socket ${socketPath}; stop it first (overseer ctl stop --control ${socketPath}) or choose another path`,
      { subject: socketPath, ...(holder === 0 ? {} : { pid: holder }) },
    );
  }
  await fs.promises.unlink(socketPath).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/** The pid of the master answering on `socketPath` (0 when it answers but says no pid), or undefined when nothing answers. */
export async function askStatusPid(socketPath: string, timeout = 1_000): Promise<number | undefined> {
  try {
    const { response } = await sendControl(socketPath, 'status', { timeout });
    const pid = response.ok ? (response.status as { pid?: unknown } | undefined)?.pid : undefined;
    return typeof pid === 'number' ? pid : 0;
  } catch (error) {
    // Refused or absent: nobody is there. Anything else (a timeout) is someone, unknown.
    const code = (error as OverseerError).cause as NodeJS.ErrnoException | undefined;
    return code?.code === 'ECONNREFUSED' || code?.code === 'ENOENT' ? undefined : 0;
  }
}

/** Listens on `path` (mode 0600 from its creation) and answers control requests. */
export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const sockets = new Set<net.Socket>();
  let closed = false;
  // Half-open: a client may end its side right after the request; the answer still goes back.
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    if (closed) return void socket.destroy();
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    let handled = false;
    const respond = (response: ControlResponse, end: boolean) => {
      if (socket.destroyed || socket.writableEnded) return;
      socket.write(`${JSON.stringify(response)}\n`);
      if (!end) return;
      socket.end();
      // A client that never reads its answer or never closes does not hold the connection open.
      socket.setTimeout(REQUEST_TIMEOUT, () => socket.destroy());
    };
    /** Every bad request gets one JSON answer with a code, then the connection ends. */
    const refuse = (why: string) => {
      handled = true;
      respond(failure(why), true);
    };
    socket.setTimeout(REQUEST_TIMEOUT, () => (handled ? socket.destroy() : refuse(`no request line within ${REQUEST_TIMEOUT} ms`)));
    const handle = (line: string) => {
      handled = true;
      socket.setTimeout(0);
      let request: { cmd?: unknown };
      try {
        request = JSON.parse(line) as { cmd?: unknown };
      } catch {
        return refuse('a control request is one line of JSON such as {"cmd":"status"}');
      }
      const cmd = typeof request === 'object' && request !== null ? request.cmd : undefined;
      options.log?.debug(`control request ${JSON.stringify(cmd)}`);
      void answer(options, cmd).then(
        (response) => {
          // `stop` keeps the connection open: it closes when the master has exited.
          respond(response, cmd !== 'stop' || !response.ok);
          if (cmd === 'stop' && response.ok) options.master()?.shutdown(undefined);
        },
        (error: unknown) => respond(failure(describeError(error)), true),
      );
    };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      if (handled) return;
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      const line = newline === -1 ? buffered : buffered.slice(0, newline);
      // Bounded whether or not the line has ended: nothing longer is parsed or kept.
      if (Buffer.byteLength(line) > MAX_REQUEST_BYTES) return refuse(`a control request is at most ${MAX_REQUEST_BYTES} bytes`);
      if (newline !== -1) handle(line);
    });
    socket.once('end', () => {
      if (handled) return;
      if (buffered.trim() === '') refuse('no request: send one line of JSON such as {"cmd":"status"}');
      else handle(buffered);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The socket file is created (bound) inside listen(); with this umask it is 0600 from the
    // start, so no one else can connect in the moment before the chmod below.
    const umask = process.umask(0o177);
    try {
      server.listen(options.path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  }).catch((error: unknown) => {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `cannot listen on the control socket ${options.path}: ${describeError(error)}`, {
      subject: options.path,
      cause: error,
    });
  });
  await fs.promises.chmod(options.path, 0o600);
  server.on('error', (error) => options.log?.warn(`control socket ${options.path}: ${describeError(error)}`));
  // The master exits on its own schedule; this server never holds it up.
  server.unref();
  const { ino } = await fs.promises.stat(options.path);
  return {
    path: options.path,
    close() {
      if (closed) return;
      closed = true;
      server.close();
      for (const socket of sockets) socket.destroy();
      // Only our own socket file: never one a later master made at the same path.
      try {
        if (fs.statSync(options.path).ino === ino) fs.unlinkSync(options.path);
      } catch {
        // already gone
      }
    },
  };
}

export interface SendOptions {
  /** No answer within this (ms) fails the request; undefined waits as long as it takes. */
  readonly timeout?: number | undefined;
}

/**
 * Sends one request and resolves with the answer, and with `closed`, which resolves when the
 * master closes the connection (after `stop`: when it has exited).
 */
export function sendControl(socketPath: string, cmd: string, options: SendOptions = {}): Promise<{ response: ControlResponse; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    let buffered = '';
    let settled = false;
    const fail = (why: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(new OverseerError('ERR_OVERSEER_CONTROL_FAILED', why, { subject: socketPath, cause }));
    };
    const timer = options.timeout === undefined ? undefined
      : setTimeout(() => fail(`the master on ${socketPath} did not answer ${JSON.stringify(cmd)} within ${options.timeout} ms`), options.timeout);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(`${JSON.stringify({ cmd })}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline === -1 || settled) return;
      clearTimeout(timer);
      settled = true;
      try {
        resolve({ response: JSON.parse(buffered.slice(0, newline)) as ControlResponse, closed });
      } catch (error) {
        socket.destroy();
        reject(new OverseerError('ERR_OVERSEER_CONTROL_FAILED', `the answer on ${socketPath} is not JSON: ${describeError(error)}`, { subject: socketPath, cause: error }));
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = error.code === 'ENOENT' ? `no control socket at ${socketPath}; is the master running, with this control path?`
        : error.code === 'ECONNREFUSED' ? `nothing answers on ${socketPath}; the master that made it is gone`
          : error.code === 'EACCES' ? `no permission to open ${socketPath}; run as the user the master runs as`
            : `cannot reach the master on ${socketPath}: ${describeError(error)}`;
      fail(why, error);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      fail(`the master on ${socketPath} closed the connection without an answer`);
    });
  });
}
