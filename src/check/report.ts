/**
 * What a check reports: each run's requests and handoffs, where failed requests fell, and the
 * diagnoses. Its own file so check.ts (which builds it) and diagnose.ts and format.ts (which read
 * it) import it without importing each other.
 */
import type { FailureKind } from './load.js';

export type DiagnosisCode =
  | 'reset-after-stop'
  | 'lost-at-exit'
  | 'drain-timeout'
  | 'never-ready'
  | 'child-failed'
  | 'slow-ready'
  | 'refused'
  | 'timeout'
  | 'non-2xx'
  | 'failed-in-handoff'
  | 'failed-outside-handoffs'
  | 'master-exited';

export interface Diagnosis {
  readonly code: DiagnosisCode;
  /** 'error' fails the check; 'warning' is advice. */
  readonly severity: 'error' | 'warning';
  readonly title: string;
  /** The evidence: counts, pids, timings. */
  readonly detail: string;
  readonly fix: string;
}

/**
 * Idle keep-alive connections the old child closes within this many ms of its stop signal were
 * closed at the signal, as a plain server.close() closes them. A gentle drain leaves them open
 * for a second at least (overseer's sweeps them a second after the last one is due).
 */
export const EARLY_IDLE_CLOSE_MS = 500;

export interface HandoffReport {
  readonly ok: boolean;
  /** Epoch ms: the restart signal was sent; the handoff completed or failed. */
  readonly from: number;
  readonly to: number;
  readonly oldPid: number | undefined;
  readonly newPid: number | undefined;
  readonly readyMs: number | undefined;
  readonly drainMs: number | undefined;
  /** The old child was told to drain / exited (epoch ms), when it did. */
  readonly drainAt: number | undefined;
  readonly exitAt: number | undefined;
  /** The old child was killed at terminateTimeout. */
  readonly drainTimedOut: boolean;
  /**
   * Idle keep-alive connections the old child closed within the first moments after its stop
   * signal (check.ts), while it drained or right at its exit: a client that reuses one in that
   * instant is reset, whether or not a request of the check happened to.
   */
  readonly idleClosedEarly: { readonly draining: number; readonly atExit: number };
  /** Why the handoff failed, when it did. */
  readonly error?: { readonly code: string; readonly message: string };
}

/** Where a failed request fell, by its time against the handoffs. */
export type FailurePlace = 'draining' | 'at-exit' | 'killed' | 'in-handoff' | 'outside';

export interface FailedRequest {
  readonly kind: FailureKind;
  readonly place: FailurePlace;
  /** Sent on a connection opened for it (1) or on a reused keep-alive one (0). */
  readonly fresh: boolean;
}

export interface RunReport {
  readonly keepAlive: boolean;
  readonly requests: number;
  readonly failed: number;
  readonly failures: Record<FailureKind, number>;
  /** p99 of requests scheduled in the steady stretch, and inside the handoff windows (signal → completed), ms. */
  readonly steadyP99: number;
  readonly windowP99: number;
  readonly handoffs: HandoffReport[];
  readonly failedRequests: FailedRequest[];
  /** The first failure of each kind, as the client saw it. */
  readonly examples: Partial<Record<FailureKind, string>>;
  /** Why this run did fewer handoffs than asked, when it did. */
  readonly stoppedEarly?: string;
  /** Client event-loop lag p99, ms: a high one means the machine was too busy to trust latencies. */
  readonly clientLagP99: number;
  /**
   * Idle keep-alive connections the server closed outside every handoff (a short
   * keepAliveTimeout): where it does, one it closes at a stop signal says nothing of its drain.
   */
  readonly idleClosedOutside: number;
}

export interface CheckReport {
  readonly target: string;
  readonly address: string;
  readonly path: string;
  readonly rate: number;
  readonly durationMs: number;
  readonly handoffsAsked: number;
  readonly terminateTimeout: number;
  readonly readyTimeout: number;
  /** The first child: its boot-to-ready time, or why it never got ready. */
  readonly firstReadyMs: number | undefined;
  /** How long a bare `node -e 0` takes here, ms: what slow readiness is measured against. */
  readonly nodeBootMs: number;
  readonly runs: RunReport[];
  readonly diagnoses: Diagnosis[];
  /** Failed requests over every run. */
  readonly failed: number;
  /** No failed request and no error diagnosis. */
  readonly ok: boolean;
}
