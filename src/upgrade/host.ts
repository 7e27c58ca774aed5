/**
 * What the upgrader needs of the process that runs it. The master implements it; the upgrader
 * never sees the master itself, so the upgrade pipeline can be read, tested and changed alone.
 */
import type { ResolvedConfig } from '../core/config.js';
import type { OverseerError } from '../errors.js';
import type { EventBody, Log } from '../events.js';
import type { CheckAnswer } from '../protocol.js';
import type { ProbationVerdict } from '../core/probation.js';

/** The settings the pipeline reads: verification, limits, hooks and the installed version. */
export type UpgradeSettings = Pick<
  ResolvedConfig,
  'verify' | 'version' | 'checkTimeout' | 'maxBundleSize' | 'keepReleases' | 'minFetchInterval' | 'preUpgrade' | 'noRestart' | 'noRestartAfterFetch'
>;

export type HandoffOutcome = { readonly ok: true } | { readonly ok: false; readonly error: OverseerError };

export interface UpgradeHost {
  /** The file or folder children run and upgrades replace. */
  readonly bundlePath: string;
  /** sha256 (or folder manifest hash) of the installed bundle. */
  readonly sha256: string;
  /** True once the host is shutting down: nothing new is installed then. */
  readonly stopping: boolean;
  readonly log: Log;
  emit(event: EventBody): void;
  /** The installed bundle changed; the next child runs it. */
  setBundle(sha256: string): void;
  /** The echo-token check of a staged release, run the way children are run. */
  check(path: string, timeout: number): Promise<CheckAnswer>;
  /**
   * A ready-first handoff onto the installed bundle: 'upgrade' after a swap, 'rollback' after a
   * failed probation restored the previous build, 'respawn' when a rollback could not restore it.
   */
  handoff(reason: 'upgrade' | 'rollback' | 'respawn'): Promise<HandoffOutcome>;
  /**
   * Watches the child just handed off to for the probation (core/probation.ts) and resolves with
   * the verdict; 'passed' at once when probation is off. While it runs, a crash of that child is
   * left to the verdict (no respawn).
   */
  probation(): Promise<ProbationVerdict>;
  /** Ends the probation under way without a verdict (a newer release supersedes it). */
  endProbation(): void;
  /** True while nothing serves (the failed child crashed). */
  readonly serving: boolean;
  /** A poll ended (the master's idle collection, core/idle-gc.ts, waits for a quiet spell after it). */
  pollSettled?(): void;
}
