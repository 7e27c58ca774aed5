/**
 * Launches a Node child of the bundle: fork with the master's flags, in its own process group,
 * then hand it the sockets over IPC once it says hello (so none arrive before it listens for them).
 * In a single executable application the bundle is the executable: it is run again (sea.ts).
 */
import { fork, spawn } from 'node:child_process';
import type { Launcher, LaunchContext, LaunchedChild, LaunchEvents } from './launcher.js';
import type { Log } from '../../events.js';
import { ROLE_CHILD, ROLE_ENV, isProtocolMessage, masterMessage, type CheckAnswer, type ChildMessage, type MasterMessage } from '../../protocol.js';

import { childExecArgv, commandFor, isSea } from './sea.js';

export { childExecArgv } from './sea.js';

/** How a write to a channel the child already closed fails. */
const CHANNEL_CLOSED = new Set(['EPIPE', 'ECONNRESET', 'ERR_IPC_CHANNEL_CLOSED']);

export class NodeLauncher implements Launcher {
  readonly #log: Log;

  constructor(log: Log) {
    this.#log = log;
  }

  async check(file: string, timeout: number): Promise<CheckAnswer> {
    // Loaded with the first release: a master without a fetcher never needs it.
    const { NODE_CHECK_ADVICE, runEchoCheck } = await import('../../upgrade/verify.js');
    return runEchoCheck({ file, timeout, ...commandFor(file, process.argv.slice(2)), advice: NODE_CHECK_ADVICE });
  }

  launch(context: LaunchContext, events: LaunchEvents): LaunchedChild {
    const options = {
      env: { ...process.env, [ROLE_ENV]: ROLE_CHILD },
      // Its own process group: a terminal's Ctrl-C reaches the master alone, which forwards it once.
      detached: true,
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'] as ['inherit', 'inherit', 'inherit', 'ipc'],
    };
    // A single executable has no script to fork: the (installed) executable runs again, with IPC.
    const child = isSea()
      ? spawn(context.bundlePath, process.argv.slice(2), options)
      : fork(context.bundlePath, process.argv.slice(2), { ...options, execArgv: childExecArgv() });
    const send = (message: MasterMessage, handle?: unknown) => {
      if (!child.connected) return;
      // Raw TCP/Pipe handles travel as 'net.Native'; the master keeps its own copy open.
      child.send(message, handle as never, (error: Error | null) => {
        if (!error) return;
        // A child closes its channel only on its way out (drained, or its master gone): what it
        // was still to be told is moot, and its exit is reported on its own.
        if (CHANNEL_CLOSED.has((error as NodeJS.ErrnoException).code ?? '')) {
          this.#log.debug(`child ${child.pid} closed its channel before a ${message.type} message reached it: ${error.message}`);
        } else {
          this.#log.warn(`could not send to child ${child.pid}: ${error.message}`);
        }
      });
    };
    child.on('message', (message: unknown) => {
      if (!isProtocolMessage<ChildMessage>(message)) return;
      switch (message.type) {
        case 'hello':
          send(masterMessage({
            type: 'init', generation: context.generation, id: context.sha256, bundlePath: context.bundlePath,
            listeners: context.listeners.map((listener) => listener.info), terminateTimeout: context.terminateTimeout,
            drainSpread: context.drainSpread,
          }));
          context.listeners.forEach((listener, index) => {
            send(masterMessage({ type: 'listener', generation: context.generation, index }), listener.handle);
          });
          break;
        case 'ready':
          events.ready();
          break;
        case 'failed':
          events.failed(message.error);
          break;
        case 'restart':
          events.restart();
          break;
        case 'responses':
          events.report?.({ type: 'responses', counts: message.counts });
          break;
        case 'health':
          events.report?.({ type: 'health', healthy: message.healthy === true, reason: typeof message.reason === 'string' ? message.reason.slice(0, 1000) : undefined });
          break;
      }
    });
    return {
      process: child,
      probation(on) {
        send(masterMessage({ type: 'probation', generation: context.generation, on }));
      },
      drain(reason) {
        if (!child.connected) {
          child.kill('SIGTERM');
          return;
        }
        // The generation is in the message: a late drain can never reach its successor.
        child.send(masterMessage({ type: 'drain', generation: context.generation, reason }), (error: Error | null) => {
          if (error) child.kill('SIGTERM');
        });
      },
    };
  }
}
