/**
 * What the master tells the listen preload (src/preload/listen.ts) through one environment
 * variable, and which listen() calls take a held socket. Shared by both sides; no side effects.
 */

export const PRELOAD_ENV = 'OVERSEER_PRELOAD';

export type HeldSocket =
  | { readonly fd: number; readonly port: number; readonly host: string | null }
  | { readonly fd: number; readonly path: string };

export interface PreloadSpec {
  readonly sockets: readonly HeldSocket[];
  /** The fd to write READY=1 to once every held socket is listened on; null under --ready-delay. */
  readonly readyFd: number | null;
  readonly stopSignal: NodeJS.Signals;
  readonly terminateTimeout: number;
  /** The NODE_OPTIONS the app would have had without the preload; null when it had none. */
  readonly nodeOptions: string | null;
}

/** What one listen() call asks for: a TCP port (and host), a unix socket path, an fd, or nothing overseer holds (port 0, a handle). */
export type ListenTarget =
  | { readonly kind: 'tcp'; readonly port: number; readonly host: string | undefined }
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'fd'; readonly fd: number }
  | { readonly kind: 'other' };

const OTHER: ListenTarget = { kind: 'other' };

/** A port as Node's listen() takes it: a number or a numeric string, 1-65535 (0 is "any port", never held). */
function portOf(value: unknown): number | undefined {
  if (typeof value !== 'number' && typeof value !== 'string') return undefined;
  if (typeof value === 'string' && !/^\d+$/.test(value.trim())) return undefined;
  const port = Number(value);
  return Number.isInteger(port) && port > 0 && port <= 65535 ? port : undefined;
}

/** Reads listen()'s arguments the way Node's normalizeArgs does. */
export function listenTarget(args: readonly unknown[]): ListenTarget {
  const [first, second] = args;
  if (typeof first === 'object' && first !== null && !Array.isArray(first)) {
    const options = first as { port?: unknown; host?: unknown; path?: unknown; fd?: unknown; handle?: unknown };
    if (options.handle !== undefined) return OTHER;
    if (typeof options.fd === 'number') return { kind: 'fd', fd: options.fd };
    if (typeof options.path === 'string' && options.port === undefined) return { kind: 'unix', path: options.path };
    const port = portOf(options.port);
    return port === undefined ? OTHER : { kind: 'tcp', port, host: typeof options.host === 'string' ? options.host : undefined };
  }
  if (typeof first === 'string' && portOf(first) === undefined && first !== '') return { kind: 'unix', path: first };
  const port = portOf(first);
  if (port === undefined) return OTHER;
  return { kind: 'tcp', port, host: typeof second === 'string' ? second : undefined };
}

const ANY = new Set(['', '0.0.0.0', '::', '[::]']);
const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/**
 * Same port, and hosts that do not contradict each other: no host, or a wildcard on either side,
 * or the same address (localhost counts as a loopback address). The address given to --listen
 * wins where they differ only in breadth: that is the address the user chose for this app.
 */
function sameHost(asked: string | undefined, held: string | null): boolean {
  if (asked === undefined || held === null || ANY.has(asked) || ANY.has(held)) return true;
  const bare = (host: string) => host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare(asked) === bare(held)) return true;
  return LOOPBACK.has(bare(asked)) && LOOPBACK.has(bare(held)) && (asked === 'localhost' || held === 'localhost');
}

/** The held socket a listen() call should take, if any. `resolve` makes a unix path absolute. */
export function heldFor(target: ListenTarget, sockets: readonly HeldSocket[], resolve: (path: string) => string): HeldSocket | undefined {
  switch (target.kind) {
    case 'tcp': return sockets.find((held) => 'port' in held && held.port === target.port && sameHost(target.host, held.host));
    case 'unix': return sockets.find((held) => 'path' in held && held.path === resolve(target.path));
    case 'fd': return sockets.find((held) => held.fd === target.fd);
    default: return undefined;
  }
}

/** The spec from the environment, or undefined when it is absent or not what the master writes. */
export function parseSpec(text: string | undefined): PreloadSpec | undefined {
  if (text === undefined) return undefined;
  try {
    const spec = JSON.parse(text) as PreloadSpec;
    const fine = Array.isArray(spec.sockets)
      && spec.sockets.every((held) => Number.isInteger(held.fd) && held.fd >= 3 && (('port' in held && Number.isInteger(held.port)) || ('path' in held && typeof held.path === 'string')))
      && (spec.readyFd === null || (Number.isInteger(spec.readyFd) && spec.readyFd >= 3))
      && typeof spec.stopSignal === 'string' && Number.isInteger(spec.terminateTimeout)
      && (spec.nodeOptions === null || typeof spec.nodeOptions === 'string');
    return fine ? spec : undefined;
  } catch {
    return undefined;
  }
}
