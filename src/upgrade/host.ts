/**
 * What the upgrader needs of the process that runs it. The master implements it; the upgrader
 * never sees the master itself, so the upgrade pipeline can be read, tested and changed alone.
 */
import type { ResolvedConfig } from '../core/config.js';
import type { OverseerError } from '../errors.js';
import type { EventBody, Log } from '../events.js';
import type { CheckAnswer } from '../protocol.js';

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
  /** A ready-first handoff onto the installed bundle. */
  handoff(reason: 'upgrade'): Promise<HandoffOutcome>;
}
