/**
 * Preloaded into a Node child of `overseer run` (NODE_OPTIONS=--import, see
 * src/core/launch/preload.ts), so an unmodified app's `server.listen(3000)` serves on the socket
 * the master holds (fd 3, …) instead of failing with EADDRINUSE. It reports ready once every held
 * socket has a server listening on it, and drains those servers on the stop signal the way run()
 * children do (src/core/drain.ts). A listen() that matches no held socket is left alone.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { Drainer } from '../core/drain.js';
import { exitProcess } from '../core/exit.js';
import { PRELOAD_ENV, heldFor, listenTarget, parseSpec, type HeldSocket, type PreloadSpec } from './held.js';

/** Once drained, an app without its own stop handler gets this long to end on its own (as a run() child). */
const EXIT_GRACE_MS = 1_000;

type Listen = (this: net.Server, ...args: unknown[]) => net.Server;

/**
 * While the preload drains a server, the app's own shutdown code calling server.close(cb) waits
 * for that drain instead of cutting it short (Node's close would also drop idle keep-alive
 * connections at once, and report ERR_SERVER_NOT_RUNNING on a server already closing): cb runs
 * once the server has closed. The override is on that server object only.
 */
function holdClose(server: net.Server): void {
  let closed = false;
  server.once('close', () => (closed = true));
  Object.defineProperty(server, 'close', {
    configurable: true,
    writable: true,
    value: function close(callback?: (error?: Error) => void): net.Server {
      if (typeof callback === 'function') {
        if (closed) process.nextTick(callback);
        else server.once('close', () => callback());
      }
      return server;
    },
  });
}

function install(spec: PreloadSpec): void {
  const original = net.Server.prototype.listen as Listen;
  const taken = new Set<HeldSocket>();
  const listening = new Set<HeldSocket>();
  const servers = new Set<net.Server>();
  let drainer: Drainer | undefined;

  const onStop = () => {
    // An app with its own handler for the stop signal decides when it exits; the others would
    // have died on the signal, so they end once drained (and a short grace), as run() children do.
    const appHandles = process.listenerCount(spec.stopSignal) > 1;
    for (const server of servers) holdClose(server);
    void drainer?.drain(Date.now() + spec.terminateTimeout).then(() => {
      if (appHandles) return;
      setTimeout(() => exitProcess(typeof process.exitCode === 'number' ? process.exitCode : 0), EXIT_GRACE_MS).unref();
    });
  };

  /** The first server on a held socket arms the drain: an app that never takes one keeps Node's own signal handling. */
  const adopt = (server: net.Server) => {
    if (drainer === undefined) {
      drainer = new Drainer(spec.sockets.map((held) => held.fd));
      // First, so the drain has begun (and close() is held) before the app's own handler runs.
      process.prependListener(spec.stopSignal, onStop);
    }
    servers.add(server);
    drainer.adopt(server);
  };

  const onListening = (held: HeldSocket) => {
    listening.add(held);
    if (listening.size < spec.sockets.length) return;
    // Every held socket serves: say so.
    if (spec.readyFd !== null) {
      try {
        fs.writeSync(spec.readyFd, 'READY=1\n');
      } catch {
        // The master is gone or readiness is not asked for: nothing to tell.
      }
    }
  };

  const patched = function listen(this: net.Server, ...args: unknown[]): net.Server {
    const target = listenTarget(args);
    const held = heldFor(target, spec.sockets.filter((socket) => !taken.has(socket)), (file) => path.resolve(file));
    if (held === undefined) return original.apply(this, args);
    taken.add(held);
    // Every held socket is taken: later calls have nothing to match, so listen() is Node's own again.
    if (taken.size === spec.sockets.length && net.Server.prototype.listen === patched) net.Server.prototype.listen = original as typeof net.Server.prototype.listen;
    // The app listens on the fd itself: it knows overseer, and drains and reports ready itself.
    if (target.kind === 'fd') return original.apply(this, args);
    adopt(this);
    const ok = () => {
      this.off('error', failed);
      onListening(held);
    };
    const failed = (error: Error) => {
      this.off('listening', ok);
      taken.delete(held);
      // Our listener must not swallow an error the app does not handle: Node would throw it.
      if (this.listenerCount('error') === 0) throw error;
    };
    this.once('listening', ok);
    this.once('error', failed);
    const callback = args.findLast((arg) => typeof arg === 'function');
    const given = (typeof args[0] === 'object' && args[0] !== null ? args[0] : {}) as { backlog?: unknown; exclusive?: unknown; signal?: unknown };
    const backlog = given.backlog ?? args.slice(1).find((arg) => typeof arg === 'number');
    const options = {
      fd: held.fd,
      ...(typeof backlog === 'number' ? { backlog } : {}),
      ...(given.exclusive === undefined ? {} : { exclusive: given.exclusive }),
      ...(given.signal === undefined ? {} : { signal: given.signal }),
    };
    return original.apply(this, callback === undefined ? [options] : [options, callback]);
  };
  net.Server.prototype.listen = patched as typeof net.Server.prototype.listen;
}

const spec = isMainThread ? parseSpec(process.env[PRELOAD_ENV]) : undefined;
if (spec !== undefined) {
  // The app's own children (a worker script, npm, a shell) must not inherit the preload or the sockets' map.
  delete process.env[PRELOAD_ENV];
  if (spec.nodeOptions === null) delete process.env.NODE_OPTIONS;
  else process.env.NODE_OPTIONS = spec.nodeOptions;
  install(spec);
}
