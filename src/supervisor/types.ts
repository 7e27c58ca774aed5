/** The Supervisor's public shapes: process states, status snapshots and the events it emits. */
import type { OverseerError } from '../errors.js';
import type { LogStream } from './spawn.js';

/**
 * idle → starting → running → finished | interrupted | fatal, with stopping before interrupted
 * and backoff (waiting to retry) between a failure and the next start. See docs/supervisor.md.
 */
export type ProcessState = 'idle' | 'starting' | 'running' | 'stopping' | 'backoff' | 'finished' | 'interrupted' | 'fatal';

export interface ProcessStatus {
  readonly id: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly state: ProcessState;
  /** The current process's pid, or the last one's once it exited; null before a start. */
  readonly pid: number | null;
  /** The last process's exit code; null while it runs or when a signal ended it. */
  readonly exitCode: number | null;
  /** The signal that ended the last process, if one did. */
  readonly signal: NodeJS.Signals | null;
  /** Why the process is fatal (ERR_OVERSEER_SPAWN_FAILED or ERR_OVERSEER_PROCESS_FAILED). */
  readonly error: OverseerError | null;
  /** Date.now() when the current (or last) process was started. */
  readonly startedAt: number | null;
  /** Date.now() when the last process exited; null while one runs. */
  readonly stoppedAt: number | null;
  /** Milliseconds the current (or last) process has run. */
  readonly runtime: number;
  /** Processes started by the current (or last) supervise() call, the first one included. */
  readonly attempts: number;
  /** In backoff: Date.now() at which the next start is due. */
  readonly retryAt: number | null;
}

export interface StateChange {
  readonly id: string;
  readonly state: ProcessState;
  readonly previous: ProcessState;
  readonly timestamp: number;
  readonly status: ProcessStatus;
}

export interface LogLine {
  readonly id: string;
  readonly pid: number;
  readonly stream: LogStream;
  /** One line without its line break, decoded as UTF-8. */
  readonly text: string;
  readonly timestamp: number;
}

export interface SupervisorEvents {
  state: [change: StateChange];
  log: [line: LogLine];
}

export interface StopOptions {
  /** Send SIGKILL now instead of stopSignal (and SIGKILL after stopTimeout). @default false */
  readonly kill?: boolean;
}

export interface IterateOptions {
  /** Only this process's events. */
  readonly id?: string;
  /** Ends the iteration (without an error) when aborted. */
  readonly signal?: AbortSignal;
}
