/**
 * The child's gentle drain. Plain server.close() resets keep-alive clients (since Node 19 it
 * destroys idle sockets a client is about to reuse), so instead: close only the listener, answer
 * later requests with `Connection: close` (each connection from its own moment, spread over a
 * window: drain-spread.ts), sweep idle connections after a grace period, and close whatever is
 * left at the deadline.
 */
import dc from 'node:diagnostics_channel';
import net from 'node:net';
import { listenerHold, SpreadSchedule, spreadWindow, type DrainSpread } from './drain-spread.js';

/** Idle keep-alive sockets get this long after the last one is due to send one more request before the first sweep. */
const SWEEP_AFTER_MS = 1_000;
const SWEEP_EVERY_MS = 1_000;

/**
 * Internal, for test/core/listener-hold.test.ts, not an API: a handoff's drain publishes
 * `{ phase: 'drain', server, holdMs, until }` when each server starts draining and
 * `{ phase: 'stopped', server }` once it stops accepting. A test keeps a hold (holdMs > 0) open
 * by pushing promises to `until`, so it can open a connection inside it on a loaded machine;
 * a server with no hold stops at once whatever is pushed. Nothing is published without a subscriber.
 */
const LISTENER_HOLD_CHANNEL = 'overseer-internal:listener-hold';
const holdChannel = dc.channel(LISTENER_HOLD_CHANNEL);

interface HttpLikeServer extends net.Server {
  closeIdleConnections(): void;
  closeAllConnections(): void;
}

function isHttpLike(server: net.Server): server is HttpLikeServer {
  return typeof (server as Partial<HttpLikeServer>).closeIdleConnections === 'function'
    && typeof (server as Partial<HttpLikeServer>).closeAllConnections === 'function';
}

interface RequestStart {
  readonly server: net.Server;
  readonly socket: object;
  readonly response: { shouldKeepAlive: boolean; headersSent: boolean };
}

/**
 * Tracks the servers listening on this child's sockets and drains them. Servers are adopted
 * through state.listen(), or found when they listen on one of our handles (the
 * `net.server.listen` tracing channel), so `server.listen(state.listener)` drains gently too.
 */
export class Drainer {
  readonly #servers = new Map<net.Server, Set<net.Socket>>();
  /** Each draining server's close schedule. */
  readonly #draining = new Map<net.Server, SpreadSchedule>();
  readonly #fds: ReadonlySet<number>;
  #drained: Promise<void> | undefined;

  readonly #onListen = (message: unknown) => {
    const server = (message as { server?: unknown }).server;
    if (!(server instanceof net.Server)) return;
    const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
    if (typeof fd === 'number' && this.#fds.has(fd)) this.adopt(server);
  };

  readonly #onRequest = (message: unknown) => {
    const { server, socket, response } = message as RequestStart;
    const schedule = this.#draining.get(server);
    if (!schedule || response.headersSent) return;
    // No socket in the message (a Node that does not send it): close at once, as before the spread.
    if (typeof socket !== 'object' || socket === null || schedule.isDue(socket)) response.shouldKeepAlive = false;
  };

  constructor(handleFds: Iterable<number>) {
    this.#fds = new Set(handleFds);
    dc.subscribe('tracing:net.server.listen:asyncEnd', this.#onListen);
  }

  adopt(server: net.Server): void {
    if (this.#servers.has(server)) return;
    // Plain net servers have no connection list of their own; keep one for the deadline.
    const sockets = new Set<net.Socket>();
    this.#servers.set(server, sockets);
    if (!isHttpLike(server)) {
      server.on('connection', (socket: net.Socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
      });
    }
  }

  /**
   * Drains every server; resolves when all are closed. Idempotent: later calls share the first.
   * `spread`: the window over which keep-alive connections are told to close (see drain-spread.ts).
   */
  drain(deadline: number, spread: DrainSpread = 0): Promise<void> {
    this.#drained ??= this.#drainAll(deadline, spread);
    return this.#drained;
  }

  async #drainAll(deadline: number, spread: DrainSpread): Promise<void> {
    dc.unsubscribe('tracing:net.server.listen:asyncEnd', this.#onListen);
    // Only from here on: a subscriber makes Node build a message object for every request.
    dc.subscribe('http.server.request.start', this.#onRequest);
    await Promise.all([...this.#servers].map(([server, sockets]) => this.#drainOne(server, sockets, deadline, spread)));
    dc.unsubscribe('http.server.request.start', this.#onRequest);
  }

  async #drainOne(server: net.Server, sockets: Set<net.Socket>, deadline: number, spread: DrainSpread): Promise<void> {
    // The count sizes the close schedule; counted now, so serving costs nothing per connection.
    const open = isHttpLike(server) ? await connectionCount(server) : sockets.size;
    const start = Date.now();
    const schedule = new SpreadSchedule(start, spreadWindow(spread, open, deadline - start), open);
    this.#draining.set(server, schedule);
    return new Promise((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      const finish = () => {
        for (const timer of timers) clearTimeout(timer);
        resolve();
      };
      if (!server.listening) {
        finish();
        return;
      }
      server.once('close', finish);
      // net.Server's close, not http.Server's: it stops accepting and leaves open
      // connections alone; 'close' fires once the last one ends. For HTTP in a handoff it comes a
      // moment later (drain-spread.ts): meanwhile the new child shares new connections while it
      // warms, and those the old one takes are told to close like the rest. A plain net server
      // has no way to tell them, so it stops accepting at once.
      const stopAccepting = () => {
        net.Server.prototype.close.call(server);
        if (holdChannel.hasSubscribers) holdChannel.publish({ phase: 'stopped', server });
      };
      const hold = isHttpLike(server) ? Math.min(listenerHold(schedule.window), Math.max(0, deadline - Date.now())) : 0;
      const until: Promise<unknown>[] = [];
      if (holdChannel.hasSubscribers) holdChannel.publish({ phase: 'drain', server, holdMs: hold, until });
      if (hold > 0 && until.length > 0) {
        const held = new Promise((resolve) => timers.push(setTimeout(resolve, hold)));
        void Promise.all([held, ...until]).then(stopAccepting, stopAccepting);
      } else if (hold > 0) timers.push(setTimeout(stopAccepting, hold));
      else stopAccepting();
      const remaining = Math.max(0, deadline - Date.now());
      if (isHttpLike(server)) {
        const sweep = () => {
          server.closeIdleConnections();
          timers.push(setTimeout(sweep, SWEEP_EVERY_MS).unref());
        };
        // Not before every connection is due, plus the grace: a busy one caught idle between
        // two requests would be reset instead of told.
        const sweepIn = schedule.sweepAt(SWEEP_AFTER_MS) - Date.now();
        if (remaining > sweepIn) timers.push(setTimeout(sweep, sweepIn).unref());
        timers.push(setTimeout(() => server.closeAllConnections(), remaining).unref());
      } else {
        timers.push(setTimeout(() => { for (const socket of sockets) socket.destroy(); }, remaining).unref());
      }
    });
  }
}

/** The server's open connections (0 if it cannot say). */
function connectionCount(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.getConnections((error, count) => resolve(error ? 0 : count)));
}
