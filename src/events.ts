/**
 * Lifecycle events the master reports through config.onEvent, on diagnostics_channel, and the
 * debug/warning log. Events are plain objects with a `type` tag; `at` is Date.now() when it happened.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { debuglog } from 'node:util';
import type { ResponseCounts } from './protocol.js';

export type OverseerEvent =
  | { type: 'master-started'; at: number; pid: number; addresses: string[]; bundlePath: string; sha256: string }
  | { type: 'child-forked'; at: number; pid: number; generation: number; reason: string }
  | { type: 'child-ready'; at: number; pid: number; generation: number; bootMs: number }
  | { type: 'child-draining'; at: number; pid: number; generation: number; reason: string }
  | { type: 'child-exited'; at: number; pid: number; generation: number; code: number | null; signal: NodeJS.Signals | null; expected: boolean }
  | { type: 'handoff-started'; at: number; reason: string; from: number | undefined }
  | { type: 'handoff-completed'; at: number; reason: string; from: number | undefined; to: number; timings: HandoffTimings }
  | { type: 'handoff-failed'; at: number; reason: string; pid: number | undefined; error: string; code: string }
  | { type: 'respawn-scheduled'; at: number; delayMs: number; crashes: number }
  | { type: 'master-exiting'; at: number; code: number; reason: string }
  | { type: 'fetch-failed'; at: number; fetcher: string; error: string; code: string; retryInMs: number }
  | {
      type: 'manifest-accepted'; at: number; source: string; sequence: number; expires: string; channel: string; instanceId: string;
      /** What the manifest means for this instance (chooseRelease in src/manifest/document.ts). */
      action: 'upgrade' | 'pull-back' | 'downgrade' | 'stay'; version: string | undefined; bucket: number | undefined; reason: string;
    }
  | { type: 'manifest-refused'; at: number; source: string; code: string; field: string | undefined; error: string }
  | { type: 'upgrade-available'; at: number; source: string; id: string | undefined; version: string | undefined }
  | { type: 'upgrade-progress'; at: number; source: string; received: number; total: number | undefined }
  | { type: 'upgrade-skipped'; at: number; source: string; why: 'same-sha256' | 'rejected-before' | 'known-id' }
  | {
      type: 'upgrade-rejected'; at: number; source: string; sha256: string | undefined; error: string; code: string;
      /** Evidence: sha256 of the bytes received as published, the sha256 the source declared, the version claimed. */
      receivedSha256?: string | undefined; declaredSha256?: string | undefined; version?: string | undefined;
    }
  | { type: 'upgrade-applied'; at: number; source: string; sha256: string; version: string | undefined; timings: UpgradeTimings; restart: boolean }
  | {
      type: 'upgrade-rolled-back'; at: number; source: string; sha256: string; error: string; code: 'ERR_OVERSEER_ROLLED_BACK';
      /** Why: the new child never got ready, or (with `evidence`) it failed its probation. */
      cause?: 'not-ready' | ProbationCause | undefined; evidence?: ProbationEvidence | undefined;
    }
  | { type: 'probation-started'; at: number; pid: number; sha256: string; durationMs: number; endsAt: number; watching: ProbationWatch[] }
  | { type: 'probation-passed'; at: number; pid: number; sha256: string; durationMs: number; early: boolean; evidence: ProbationEvidence }
  | { type: 'probation-failed'; at: number; pid: number; sha256: string; cause: ProbationCause; error: string; evidence: ProbationEvidence }
  /** A failed probation whose previous build could not come back: the new build keeps serving. */
  | { type: 'rollback-failed'; at: number; source: string; sha256: string; error: string; code: string };

/** What a probation watches: exits always; responses and verdicts of run() children; the probe when configured. */
export type ProbationWatch = 'exit' | 'responses' | 'verdict' | 'probe';

export type ProbationCause = 'exit' | 'error-ratio' | 'probe' | 'unhealthy';

/** What a probation saw, as the evidence of its verdict. */
export interface ProbationEvidence {
  readonly exitCode?: number | null | undefined;
  readonly signal?: string | null | undefined;
  /** Responses by status class since probation began (run() children). */
  readonly responses?: ResponseCounts | undefined;
  /** 5xx answers over all answers. */
  readonly errorRatio?: number | undefined;
  /** Consecutive failed probes, and what the last one got. */
  readonly probeFailures?: number | undefined;
  readonly probeError?: string | undefined;
  /** What state.reportUnhealthy() said. */
  readonly reason?: string | undefined;
}

export interface HandoffTimings {
  /** Decision to fork → the new child's 'ready'. */
  readonly readyMs: number;
  /** The old child told to drain → it exited. */
  readonly drainMs: number;
  /** Decision → old child exited. */
  readonly totalMs: number;
}

export interface UpgradeTimings {
  readonly pollMs: number;
  readonly downloadMs: number;
  /** Integrity, signature and staging, without the echo-token check. */
  readonly verifyMs: number;
  /** The echo-token check of the staged release (0 when it is off). */
  readonly checkMs: number;
  readonly swapMs: number;
  /** The ready-first handoff to the new release (0 under noRestart or noRestartAfterFetch). */
  readonly handoffMs: number;
}

/** An event as its emitter takes it: `at` is stamped on emit. */
export type EventBody = OverseerEvent extends infer E ? (E extends OverseerEvent ? Omit<E, 'at'> : never) : never;

const nodeDebug = debuglog('overseer');

export interface Log {
  debug(message: string): void;
  warn(message: string): void;
}

/** A log that prints debug lines when `debug` is on (or NODE_DEBUG=overseer), warnings unless `noWarn`. */
export function createLog(options: { debug: boolean; noWarn: boolean }, prefix: string): Log {
  return {
    debug(message) {
      if (options.debug) process.stderr.write(`[overseer ${prefix}] ${message}\n`);
      else nodeDebug('%s %s', prefix, message);
    },
    warn(message) {
      if (!options.noWarn) process.stderr.write(`[overseer ${prefix}] warning: ${message}\n`);
    },
  };
}

/**
 * Warns about a failure that repeats (a poll every interval, a handoff after every crash) the
 * first time, then only when it changes or ends: a warning per poll would drown the log, and
 * none at all would hide an upgrade path that stopped working. Silent under noWarn, as its log is.
 */
export class ChangeWarner {
  readonly #log: Log;
  /** What the last failure was (its key), undefined while things work. */
  #failing: string | undefined;

  constructor(log: Log) {
    this.#log = log;
  }

  /**
   * `key` says when two failures are the same one (a code and a message). Its numbers are
   * ignored: a pid, a byte count or a port changes on every try while the failure does not.
   */
  failed(key: string, message: string): void {
    const same = key.replace(/\d+/g, '#');
    if (same === this.#failing) return;
    this.#failing = same;
    this.#log.warn(message);
  }

  /** Says `message` once when the last report was a failure; nothing when things already worked. */
  recovered(message: string): void {
    if (this.#failing === undefined) return;
    this.#failing = undefined;
    this.#log.warn(message);
  }
}

/**
 * Every event is published on its own channel, `overseer:<type>` (one named channel per kind,
 * as undici and node:http do), so APM tools and loggers subscribe without onEvent.
 */
export const CHANNEL_PREFIX = 'overseer:';

const channels = new Map<string, diagnosticsChannel.Channel>();

/** The diagnostics_channel an event type is published on. */
export function eventChannel(type: OverseerEvent['type']): diagnosticsChannel.Channel {
  let channel = channels.get(type);
  if (!channel) {
    channel = diagnosticsChannel.channel(`${CHANNEL_PREFIX}${type}`);
    channels.set(type, channel);
  }
  return channel;
}

/** Builds the emitter the master uses: stamps `at`, logs, publishes, and never lets a throwing onEvent hurt the master. */
export function createEmitter(onEvent: ((event: OverseerEvent) => void) | undefined, log: Log): (event: EventBody) => void {
  return (body) => {
    const event = { ...body, at: Date.now() } as OverseerEvent;
    log.debug(`${event.type} ${JSON.stringify(body, (key, value) => (key === 'type' ? undefined : value))}`);
    // Nothing is published (or copied) while nobody listens.
    const channel = eventChannel(event.type);
    if (channel.hasSubscribers) channel.publish(event);
    if (!onEvent) return;
    try {
      onEvent(event);
    } catch (error) {
      log.warn(`onEvent threw on ${event.type}: ${error instanceof Error ? error.stack : String(error)}`);
    }
  };
}
