/**
 * The child: says hello, receives the master's sockets, runs the program, reports ready, and
 * drains then exits when the master asks, on SIGTERM/SIGINT, or when the master is gone.
 */
import type { ResolvedConfig } from './config.js';
import { Drainer } from './drain.js';
import type { DrainSpread } from './drain-spread.js';
import { describeError } from '../errors.js';
import { createLog } from '../events.js';
import { exitProcess } from './exit.js';
import type { RawHandle } from './listeners.js';
import { childMessage, isProtocolMessage, type ListenerInfo, type MasterMessage } from '../protocol.js';
import { createState } from './state.js';
import { ResponseCounter } from './response-counter.js';

/** Once drained, the child lets the event loop empty on its own for this long, then exits. */
const EXIT_GRACE_MS = 1_000;
/** A child whose master vanished drains with this deadline: it must free the port quickly. */
const ORPHAN_DEADLINE_MS = 2_000;

interface Init {
  readonly generation: number;
  readonly id: string;
  readonly bundlePath: string;
  readonly listeners: readonly ListenerInfo[];
  readonly terminateTimeout: number;
  /** Absent from a master older than the option: closes at once, as it did. */
  readonly drainSpread?: DrainSpread | undefined;
}

function send(message: ReturnType<typeof childMessage>): void {
  if (process.connected) process.send?.(message);
}

/** Waits for the master's init message and every listener handle it announces. */
function receiveInit(): Promise<{ init: Init; handles: RawHandle[] }> {
  return new Promise((resolve) => {
    let init: Init | undefined;
    const handles: RawHandle[] = [];
    const onMessage = (message: unknown, handle: unknown) => {
      if (!isProtocolMessage<MasterMessage>(message)) return;
      if (message.type === 'init') init = message;
      else if (message.type === 'listener' && handle) handles[message.index] = handle as RawHandle;
      else return;
      if (init && handles.filter(Boolean).length === init.listeners.length) {
        process.off('message', onMessage);
        resolve({ init, handles });
      }
    };
    process.on('message', onMessage);
  });
}

export async function runChild(config: ResolvedConfig): Promise<void> {
  const log = createLog(config, `child ${process.pid}`);
  send(childMessage({ type: 'hello', pid: process.pid }));
  const { init, handles } = await receiveInit();
  // The IPC channel must not keep a finished program alive (a CLI under noRestart, say).
  process.channel?.unref();

  const drainer = new Drainer(handles.map((handle) => handle.fd));
  const shutdown = new AbortController();
  let draining: Promise<never> | undefined;
  const drainAndExit = (reason: string, deadlineMs: number, code?: number): Promise<never> => {
    draining ??= (async () => {
      log.debug(`draining (${reason})`);
      shutdown.abort(reason);
      // Only a handoff has a new child to protect from every client reconnecting at once.
      await drainer.drain(Date.now() + deadlineMs, reason.startsWith('handoff:') ? init.drainSpread ?? 0 : 0);
      log.debug('drained');
      // Let the program's own shutdown work finish if it can; then end regardless.
      await new Promise((resolve) => setTimeout(resolve, EXIT_GRACE_MS).unref());
      return exitProcess(code ?? (typeof process.exitCode === 'number' ? process.exitCode : 0));
    })();
    return draining;
  };

  // Counts responses only while the master says this child is on probation.
  const counter = new ResponseCounter((counts) => send(childMessage({ type: 'responses', counts })));
  process.on('message', (message: unknown) => {
    if (!isProtocolMessage<MasterMessage>(message) || message.generation !== init.generation) return;
    if (message.type === 'drain') void drainAndExit(message.reason, init.terminateTimeout);
    else if (message.type === 'probation') {
      if (message.on) counter.start();
      else counter.stop();
    }
  });
  // The master forwards these; a detached child gets them once, from the master only.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => void drainAndExit(signal, init.terminateTimeout));
  }
  // A child whose master died must not stay behind holding the port.
  process.once('disconnect', () => void drainAndExit('master-gone', Math.min(ORPHAN_DEADLINE_MS, init.terminateTimeout)));

  const state = createState({
    enabled: true,
    id: init.id,
    version: config.version,
    listeners: handles,
    addresses: init.listeners.map((listener) => listener.address),
    bundlePath: init.bundlePath,
    shutdown: shutdown.signal,
    adopt: (server) => drainer.adopt(server),
    report: (healthy, reason) => send(childMessage({ type: 'health', healthy, ...(reason === undefined ? {} : { reason }) })),
  });

  try {
    await config.program(state);
  } catch (error) {
    process.stderr.write(`[overseer child ${process.pid}] program failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    send(childMessage({ type: 'failed', error: describeError(error) }));
    await drainAndExit('program-failed', Math.min(ORPHAN_DEADLINE_MS, init.terminateTimeout), 1);
    return;
  }
  if (!draining) send(childMessage({ type: 'ready' }));
}
