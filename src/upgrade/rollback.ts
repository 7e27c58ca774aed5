/**
 * What follows a handoff to a new release (upgrader.ts hands over here once it is installed):
 * the probation watch and its verdict, the rollback of a release that failed it (or never got
 * ready), and the loud warning when the previous build cannot come back.
 */
import { describeError, isOverseerError } from '../errors.js';
import type { ProbationVerdict } from '../core/probation.js';
import type { Release } from './fetcher.js';
import type { UpgradeHost } from './host.js';
import { signatureKey, type Rejections } from './rejections.js';
import { addRolledBack } from './rolled-back.js';

/** The release a swap installed: what a rollback remembers and undoes. */
export interface Installed {
  readonly release: Release;
  /** The installed bytes (or folder), and the downloaded ones when they differ (gzip, archive). */
  readonly sha256: string;
  readonly rawSha256: string | undefined;
  /** Puts `.previous` back in place. */
  restore(): Promise<void>;
}

/** What was installed before a swap, for a rollback. */
export interface Previous {
  readonly sha256: string;
  readonly version: string | undefined;
}

/** Why a release is rolled back: never ready after the swap, or a failed probation (with its evidence). */
export type RollbackCause = { readonly cause: 'not-ready'; readonly error: string } | Extract<ProbationVerdict, { outcome: 'failed' }>;

export class RollbackWatch {
  readonly #host: UpgradeHost;
  readonly #rejections: Rejections;
  /** Called once the previous build is back on disk, before it is handed back to. */
  readonly #restored: (previous: Previous) => void;
  /** The probation of the last release installed, with its rollback, while it runs. */
  #task: Promise<void> | undefined;

  constructor(host: UpgradeHost, rejections: Rejections, restored: (previous: Previous) => void) {
    this.#host = host;
    this.#rejections = rejections;
    this.#restored = restored;
  }

  /**
   * Step probation: the new build must hold for a while (core/probation.ts); if it fails, roll
   * back. It runs beside the fetch loop, which goes on polling (refusals are said at once); a
   * newer release that gets as far as its swap ends it first (settle()).
   */
  watch(installed: Installed, previous: Previous): void {
    const task = (async () => {
      const verdict = await this.#host.probation();
      if (verdict.outcome !== 'failed' || this.#host.stopping) return;
      await this.rollBack(installed, previous, verdict);
    })().catch((error: unknown) => {
      this.#host.log.warn(`the probation of ${installed.release.source} ended in an error: ${describeError(error)}`);
    }).finally(() => {
      if (this.#task === task) this.#task = undefined;
    });
    this.#task = task;
  }

  /** Ends a probation still running (no verdict), or waits for the rollback its failure started. */
  async settle(): Promise<void> {
    const task = this.#task;
    if (!task) return;
    this.#host.endProbation();
    await task;
  }

  /**
   * Step roll back: the release is remembered (persisted first, so a master killed mid-rollback
   * does not try it again), `.previous` restored, and, after a probation, the previous build
   * handed back to ready-first: the failed child is stopped only once it is ready. A previous
   * build that cannot come back leaves the new one serving, loudly.
   */
  async rollBack(installed: Installed, previous: Previous, failure: RollbackCause): Promise<void> {
    const { release, sha256, rawSha256 } = installed;
    this.#rejections.remember(release, 'ERR_OVERSEER_ROLLED_BACK', { rawSha256, sha256 });
    const entry = { id: release.id, sha256: [...new Set([sha256, rawSha256].filter((item): item is string => item !== undefined))], signature: signatureKey(release), at: Date.now(), cause: failure.cause };
    await addRolledBack(this.#host.bundlePath, entry, (message) => this.#host.log.warn(message)).catch((error: unknown) => {
      this.#host.log.warn(`cannot write the list of rolled-back releases beside ${this.#host.bundlePath}: ${describeError(error)}; a master restart may try ${release.source} again`);
    });
    const probation = failure.cause !== 'not-ready';
    try {
      await installed.restore();
    } catch (error) {
      this.#failed(release, sha256, `cannot restore the previous build: ${describeError(error)}`, isOverseerError(error) ? error.code : 'ERR_OVERSEER_SWAP_FAILED');
      // The failed child crashed: the new build is all there is, so it serves again.
      if (probation && !this.#host.serving && !this.#host.stopping) await this.#host.handoff('respawn');
      return;
    }
    this.#host.setBundle(previous.sha256);
    this.#restored(previous);
    if (probation) {
      const back = await this.#host.handoff('rollback');
      if (!back.ok) {
        if (!this.#host.stopping) this.#failed(release, sha256, `the previous build (restored on disk) did not start: ${back.error.message}`, back.error.code);
        return;
      }
    }
    this.#host.emit({
      type: 'upgrade-rolled-back', source: release.source, sha256, error: failure.error, code: 'ERR_OVERSEER_ROLLED_BACK', cause: failure.cause,
      ...('evidence' in failure ? { evidence: failure.evidence } : {}),
    });
    // Once per release: a release rolled back is remembered and never tried again.
    this.#host.log.warn(`rolled back ${release.source} (sha256 ${sha256}): ${failure.error}; the previous release ${probation ? 'serves again' : 'keeps serving'}`);
  }

  /** Step rollback-failed: said as an event and a warning that names what to fix. */
  #failed(release: Release, sha256: string, error: string, code: string): void {
    this.#host.emit({ type: 'rollback-failed', source: release.source, sha256, error, code });
    this.#host.log.warn(`ROLLBACK FAILED for ${release.source} (sha256 ${sha256}): ${error}; the new build, which failed its probation, is still serving (or was started again). Fix the previous build (${this.#host.bundlePath}.previous or the folder it names), or publish a fixed release`);
  }
}
