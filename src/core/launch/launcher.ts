/**
 * How the master starts a child and talks to it. The master owns phases, deadlines and
 * handoffs; a launcher owns one kind of child: a Node program that calls run() (launch-node)
 * or any executable handed its sockets the systemd way (launch-exec).
 */
import type { ChildProcess } from 'node:child_process';
import type { BoundListener } from '../listeners.js';
import type { CheckAnswer, ResponseCounts } from '../../protocol.js';

/** What a child says of its own health while on probation (launchers with a channel only). */
export type HealthReport =
  | { readonly type: 'responses'; readonly counts: ResponseCounts }
  | { readonly type: 'health'; readonly healthy: boolean; readonly reason: string | undefined };

export interface LaunchContext {
  readonly generation: number;
  readonly listeners: readonly BoundListener[];
  /** sha256 of the bundle the child runs. */
  readonly sha256: string;
  readonly bundlePath: string;
  readonly terminateTimeout: number;
  /** config.drainSpread, for the child's handoff drain. */
  readonly drainSpread?: number | 'auto' | undefined;
}

/** What the child tells the master, as the launcher learns it. */
export interface LaunchEvents {
  ready(): void;
  failed(message: string): void;
  restart(): void;
  /** The child reported responses or a verdict (probation). */
  report?(report: HealthReport): void;
}

export interface LaunchedChild {
  readonly process: ChildProcess;
  /** Asks a ready child to drain gracefully; it exits once drained. */
  drain(reason: string): void;
  /** Tells the child its probation began or ended; absent where there is no channel (exec). */
  probation?(on: boolean): void;
}

export interface Launcher {
  launch(context: LaunchContext, events: LaunchEvents): LaunchedChild;
  /** The echo-token check of a staged release, run the way this launcher would run it. */
  check(file: string, timeout: number): Promise<CheckAnswer>;
}
