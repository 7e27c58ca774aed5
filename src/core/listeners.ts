/**
 * Master side of the sockets: bind every address at start, hold the handles for the master's
 * whole life, never listen on them. Node has no public API to bind without listening, so this
 * module isolates the one undocumented call it needs, net._createServerHandle (the factory
 * Node's cluster uses), behind a feature check.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { getSystemErrorName } from 'node:util';
import type { ParsedAddress } from './config.js';
import { OverseerError } from '../errors.js';
import type { ListenerInfo } from '../protocol.js';

/** A libuv TCP or Pipe handle as Node's internals expose it. */
export interface RawHandle {
  readonly fd: number;
  getsockname?(out: Record<string, unknown>): number;
  close(callback?: () => void): void;
}

type CreateServerHandle = (address: string | null, port: number, addressType: number, fd?: number, flags?: number) => RawHandle | number;

function createServerHandle(): CreateServerHandle | undefined {
  const candidate = (net as unknown as { _createServerHandle?: unknown })._createServerHandle;
  return typeof candidate === 'function' ? (candidate as CreateServerHandle) : undefined;
}

/** True where the master can bind handles to pass to children. */
export function canBindHandles(): boolean {
  return createServerHandle() !== undefined;
}

export interface BoundListener {
  readonly info: ListenerInfo;
  readonly handle: RawHandle;
}

function bindError(address: ParsedAddress, errno: number, cause?: string): OverseerError {
  const name = getSystemErrorName(errno);
  if (name === 'EADDRINUSE') {
    return new OverseerError(
      'ERR_OVERSEER_ADDRESS_IN_USE',
      `cannot bind ${address.text}: another process listens there (EADDRINUSE); stop it or choose another address`,
      { subject: address.text },
    );
  }
  if (cause !== undefined) return new OverseerError('ERR_OVERSEER_BAD_ADDRESS', `cannot bind ${address.text}: ${cause} (the system said ${name})`, { subject: address.text });
  const why = (address.kind === 'unix' ? UNIX_HINTS : TCP_HINTS)[name] ?? '';
  const privileged = address.kind === 'tcp' && name === 'EACCES' && address.port > 0 && address.port < 1024;
  const hint = privileged ? ` (ports below 1024 need privileges: run as root, grant CAP_NET_BIND_SERVICE, or use a port of 1024 or more)` : why === '' ? '' : ` (${why})`;
  return new OverseerError('ERR_OVERSEER_BAD_ADDRESS', `cannot bind ${address.text}: ${name}${hint}`, { subject: address.text });
}

const TCP_HINTS: Readonly<Record<string, string>> = {
  EADDRNOTAVAIL: 'no interface of this machine has that IP',
  EACCES: 'permission denied: a security policy forbids binding it',
  EAFNOSUPPORT: 'this machine has no IPv6; use an IPv4 address',
};

const UNIX_HINTS: Readonly<Record<string, string>> = {
  ENOTDIR: 'a part of the path is a file, not a directory',
  ENAMETOOLONG: 'the socket path is too long (about 107 bytes at most); choose a shorter one',
  EROFS: 'the file system is read-only',
};

/**
 * Why a unix socket could not be created. libuv reports a missing directory as EACCES (as Windows
 * would), so the directory is looked at before blaming permissions.
 */
async function unixCause(socketPath: string, errno: number): Promise<string | undefined> {
  if (getSystemErrorName(errno) !== 'EACCES') return undefined;
  const dir = path.dirname(socketPath);
  const stat = await fs.promises.stat(dir).catch(() => undefined);
  if (stat === undefined) return `the directory ${dir} does not exist; create it with mkdir -p ${dir}, or choose another path`;
  if (!stat.isDirectory()) return `${dir} is not a directory`;
  return `this user may not create files in ${dir}; choose a directory it can write to`;
}

/** A unix socket file left by a master that was killed: nothing answers on it. */
async function removeStaleSocket(address: Extract<ParsedAddress, { kind: 'unix' }>): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.lstat(address.path);
  } catch {
    return;
  }
  if (!stat.isSocket()) {
    throw new OverseerError('ERR_OVERSEER_BAD_ADDRESS', `cannot bind ${address.text}: the path exists and is not a socket; remove it or choose another path`, { subject: address.text });
  }
  const answered = await new Promise<boolean>((resolve) => {
    const probe = net.connect(address.path);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
  if (answered) {
    throw new OverseerError('ERR_OVERSEER_ADDRESS_IN_USE', `cannot bind ${address.text}: another process listens there; stop it or choose another path`, { subject: address.text });
  }
  await fs.promises.unlink(address.path);
}

async function bindOne(address: ParsedAddress): Promise<BoundListener> {
  const create = createServerHandle();
  if (!create) throw new OverseerError('ERR_OVERSEER_UNSUPPORTED', 'this Node.js has no net._createServerHandle; the master cannot bind sockets');
  if (address.kind === 'unix') {
    await removeStaleSocket(address);
    const handle = create(address.path, -1, -1);
    if (typeof handle === 'number') throw bindError(address, handle, await unixCause(address.path, handle));
    return { handle, info: { address: address.text, kind: 'unix' } };
  }
  const family = address.host === undefined ? 0 : net.isIP(address.host);
  const handle = create(address.host ?? null, address.port, family);
  if (typeof handle === 'number') throw bindError(address, handle);
  // libuv defers bind errors such as EADDRINUSE until the next call on the socket.
  const out: Record<string, unknown> = {};
  const errno = handle.getsockname?.(out) ?? 0;
  if (errno !== 0) {
    handle.close();
    throw bindError(address, errno);
  }
  const host = address.host === undefined ? '' : family === 6 ? `[${address.host}]` : address.host;
  return { handle, info: { address: `${host}:${String(out.port)}`, kind: 'tcp' } };
}

/** Binds every address, in order. On any failure the ones already bound are closed. */
export async function bindAll(addresses: readonly ParsedAddress[]): Promise<BoundListener[]> {
  const bound: BoundListener[] = [];
  try {
    for (const address of addresses) bound.push(await bindOne(address));
    return bound;
  } catch (error) {
    closeAll(bound);
    throw error;
  }
}

/** Closes the master's handles; for unix sockets the master, as binder, removes the file. */
export function closeAll(listeners: readonly BoundListener[]): void {
  for (const listener of listeners) listener.handle.close();
}

/**
 * Puts the bound sockets into LISTEN state without any process accepting on them, so clients
 * queue in the backlog from the master's start (instead of being refused until the first child
 * listens) and no other process can take the port meanwhile. The master cannot do it itself:
 * libuv starts accepting wherever listen() is called. A throwaway node process calls listen()
 * on inherited copies and exits in the same tick, before its event loop could ever accept.
 */
export async function startListening(listeners: readonly BoundListener[], backlog = 511): Promise<void> {
  if (listeners.length === 0) return;
  // On failure the primer prints the index of the socket and listen()'s errno, and exits 1.
  const script = `
    const net = require('node:net');
    for (let i = 0; i < ${listeners.length}; i++) {
      const handle = net._createServerHandle(null, null, null, 3 + i);
      const errno = typeof handle === 'number' ? handle : handle.listen(${backlog});
      if (errno !== 0) { process.stdout.write(i + ' ' + errno); process.exit(1); }
    }
    process.exit(0);`;
  const primer = spawn(process.execPath, ['-e', script], {
    stdio: ['ignore', 'pipe', 'inherit', ...listeners.map((listener) => listener.handle.fd)],
    env: { PATH: process.env.PATH ?? '' },
  });
  let said = '';
  primer.stdout?.setEncoding('utf8').on('data', (text: string) => (said += text));
  const [code] = (await once(primer, 'exit')) as [number | null];
  if (code === 0) return;
  const [index, errno] = said.split(' ').map(Number);
  const listener = index === undefined ? undefined : listeners[index];
  if (listener === undefined || errno === undefined || !Number.isInteger(errno)) {
    throw new OverseerError('ERR_OVERSEER_BAD_ADDRESS', `could not put ${listeners.map((each) => each.info.address).join(', ')} into listening state (its helper process exited with ${code})`);
  }
  throw listenError(listener.info.address, errno);
}

/**
 * listen() on a bound socket fails when another socket took the same port between the bind and
 * the listen (both bound with SO_REUSEADDR, the other listened first): two programs started at
 * once on one port.
 */
function listenError(address: string, errno: number): OverseerError {
  const name = getSystemErrorName(errno);
  if (name === 'EADDRINUSE') {
    return new OverseerError(
      'ERR_OVERSEER_ADDRESS_IN_USE',
      `cannot listen on ${address}: another process started listening there at the same moment (EADDRINUSE); stop it or choose another address`,
      { subject: address },
    );
  }
  return new OverseerError('ERR_OVERSEER_BAD_ADDRESS', `cannot listen on ${address}: ${name}`, { subject: address });
}
