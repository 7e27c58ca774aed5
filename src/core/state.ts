/**
 * State: what the program receives in the child (and, disabled, in the in-process fallback).
 */
import type { RequestListener } from 'node:http';
import net from 'node:net';
import { OverseerError } from '../errors.js';

// Not an ESM import of node:http: on Node 22 and 24 that reads every export, and the lazy
// WebSocket getter loads Node's own undici, +10-14 MB RSS (docs/benchmarks.md §9 "Master memory").
const http = process.getBuiltinModule('node:http');

/**
 * A socket the master bound for this child. Opaque: pass it to `server.listen(listener)` of an
 * http, https or net server (or an express app), or hand the server to `state.listen()`.
 */
export type Listener = object;

/** A server to listen with, or a request handler (an express app) to serve through http. */
export type Listenable = net.Server | RequestListener;

export interface State {
  /** false when the program runs in-process without a master (see config.required). */
  readonly enabled: boolean;
  /** sha256 (hex) of the running bundle; '' when disabled. */
  readonly id: string;
  /** config.version of this build. */
  readonly version: string | undefined;
  readonly startedAt: Date;
  /** The first listener, or undefined when no address was configured. */
  readonly listener: Listener | undefined;
  /** One listener per configured address, in config order. */
  readonly listeners: readonly Listener[];
  /** The first address, with its real port when it was configured as 0. */
  readonly address: string | undefined;
  readonly addresses: readonly string[];
  /** The file this child runs (the file upgrades replace). */
  readonly bundlePath: string;
  /** Aborted when this child must drain: stop taking new work, finish what is running. */
  readonly shutdown: AbortSignal;
  /**
   * Listens on listeners[index] and adopts the server for the gentle drain: on shutdown its
   * listener closes, later responses carry `Connection: close`, idle connections are swept.
   * Resolves with the server once it listens. A plain request handler (an express app) is
   * served through a new http.Server.
   */
  listen(server: Listenable, index?: number): Promise<net.Server>;
  /**
   * The program's own verdict on a new build during its probation (docs/probation.md):
   * reportHealthy() ends the probation early as passed; outside a probation both are no-ops.
   */
  reportHealthy(): void;
  /** Fails the probation now, with `reason` as the evidence: the previous build comes back. */
  reportUnhealthy(reason: string): void;
}

/** Turns a request handler into an http.Server; leaves servers as they are. */
export function toServer(target: Listenable): net.Server {
  if (target instanceof net.Server) return target;
  if (typeof target === 'function') return http.createServer(target);
  throw new TypeError(`overseer: state.listen() needs a net/http/https server or a request handler; got ${typeof target}`);
}

/** server.listen(target) as a promise that rejects on the server's 'error'. */
export function listenOn(server: net.Server, target: object): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(target, () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

export interface StateFields {
  readonly enabled: boolean;
  readonly id: string;
  readonly version: string | undefined;
  readonly listeners: readonly Listener[];
  readonly addresses: readonly string[];
  readonly bundlePath: string;
  readonly shutdown: AbortSignal;
  /** Called with each server state.listen() is about to start, before it listens. */
  readonly adopt?: (server: net.Server) => void;
  /** Passes reportHealthy()/reportUnhealthy() to the master. */
  readonly report?: (healthy: boolean, reason: string | undefined) => void;
}

/** The frozen State a program receives, in a child or in the in-process fallback. */
export function createState(fields: StateFields): State {
  const { listeners, addresses, adopt, report } = fields;
  return Object.freeze({
    enabled: fields.enabled,
    id: fields.id,
    version: fields.version,
    startedAt: new Date(),
    listener: listeners[0],
    listeners,
    address: addresses[0],
    addresses,
    bundlePath: fields.bundlePath,
    shutdown: fields.shutdown,
    listen(target: Listenable, index = 0): Promise<net.Server> {
      const listener = listeners[index];
      if (!listener) {
        const fix = listeners.length === 0
          ? 'no address was configured; give run() an address such as { address: 3000 } (or `overseer run --listen :3000`)'
          : `there are ${listeners.length} (0 to ${listeners.length - 1}, one per config.addresses entry)`;
        return Promise.reject(new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `state.listen(server, ${index}) has no listener ${index}: ${fix}`, { subject: 'address' }));
      }
      const server = toServer(target);
      adopt?.(server);
      return listenOn(server, listener);
    },
    reportHealthy(): void {
      report?.(true, undefined);
    },
    reportUnhealthy(reason: string): void {
      // The reason travels to the master's events and logs: bounded, whatever the program passes.
      report?.(false, String(reason).slice(0, 1000));
    },
  });
}
