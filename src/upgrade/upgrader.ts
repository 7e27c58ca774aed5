/**
 * One poll of the upgrade pipeline, as named steps over UpgradeHost:
 *   ask → screen (installed / refused before) → download (stage while hashing) → verify bytes
 *   (sha256, signature: before anything is extracted or run) → prepare (file, or extracted
 *   folder) → check (echo token, trusted version) → preUpgrade → install (swap) → hand off →
 *   on failure roll back; after it, the probation and its rollback (rollback.ts).
 * A step that refuses the release throws an OverseerError; poll() turns it into one
 * `upgrade-rejected` event, remembers it (rejections.ts) and leaves the old child serving.
 * One job, kept whole on purpose: the steps of a poll read in order, top to bottom.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { discardStaged, restorePrevious, stageRelease, swapBundle, type StagedRelease } from './bundle.js';
import { OverseerError, describeError, isOverseerError } from '../errors.js';
import { ChangeWarner, type UpgradeTimings } from '../events.js';
import type { Fetcher, Release } from './fetcher.js';
import { FetchLoop } from './fetch-loop.js';
import { cleanupFolderDebris, discardFolder, installFolder, restorePreviousFolder, swapFolder } from './folder.js';
import { isFolderBundle } from './hash.js';
import { removeStaleLock } from './lock.js';
import { createDownloadPacer } from './memory.js';
import type { UpgradeHost, UpgradeSettings } from './host.js';
import { Rejections } from './rejections.js';
import { readRolledBack } from './rolled-back.js';
import { RollbackWatch } from './rollback.js';
import { cleanupStaleTemps } from './temps.js';
import { verifyDeclared, verifyIntegrity } from './verify.js';
import { decideVersion, higher, readVersionFloor, writeVersionFloor } from './version-floor.js';

/** Errors a download can end with that say the release itself is bad (not the network). */
const RELEASE_FAULTS = new Set(['ERR_OVERSEER_TOO_LARGE']);

/**
 * Errors of this machine, not of the release (the lock is held, the disk is full or not
 * writable): the release is not refused, and the fetch loop backs off and tries again.
 */
const LOCAL_FAULTS = new Set(['ERR_OVERSEER_LOCKED', 'ERR_OVERSEER_SWAP_FAILED']);

/** Progress events at most this often, so a fast download does not flood onEvent. */
const PROGRESS_EVERY_MS = 250;

/** A release on disk whose bytes verified, ready to be checked, go live or be thrown away. */
interface Candidate {
  /** What the echo-token check and preUpgrade see: the staged file or the extracted folder. */
  readonly path: string;
  readonly sha256: string;
  /** The candidate is the folder the bundle already points at (its files changed since start). */
  readonly live: boolean;
  swap(): Promise<void>;
  restore(): Promise<void>;
  /** Removes only what this poll created: never a folder that already existed (maybe live). */
  discard(): Promise<void>;
}

/** What one poll has learned so far, for the rejection event's evidence. */
interface Attempt {
  readonly release: Release;
  readonly polled: number;
  staged?: StagedRelease;
  candidate?: Candidate;
  version?: string | undefined;
}

export class Upgrader {
  readonly #host: UpgradeHost;
  readonly #config: UpgradeSettings;
  readonly #fetcher: Fetcher;
  /** Version of the installed build, as far as known. */
  #version: string | undefined;
  /** Highest version ever installed here (config.version, the state file, installs). */
  #floor: string | undefined;
  #installedId: string | undefined;
  readonly #rejections = new Rejections();
  /** The probation of the last release installed, and its rollback. */
  readonly #rollback: RollbackWatch;
  readonly #reported = new Set<string>();
  #folder = false;
  readonly loop: FetchLoop;

  constructor(host: UpgradeHost, config: UpgradeSettings, fetcher: Fetcher) {
    this.#host = host;
    this.#config = config;
    this.#fetcher = fetcher;
    this.#version = config.version;
    this.#floor = config.version;
    this.#rollback = new RollbackWatch(host, this.#rejections, (previous) => {
      this.#version = previous.version;
      this.#installedId = undefined;
    });
    const warnings = new ChangeWarner(host.log);
    this.loop = new FetchLoop({
      fetcher,
      minInterval: config.minFetchInterval,
      onSettled: () => host.pollSettled?.(),
      poll: async (signal) => {
        await this.poll(signal);
        warnings.recovered(`polling ${fetcher.name} for releases works again`);
      },
      onFailure: (error, retryInMs) => {
        const code = isOverseerError(error) ? error.code : 'ERR_OVERSEER_FETCH_FAILED';
        const message = describeError(error);
        host.emit({ type: 'fetch-failed', fetcher: fetcher.name, error: message, code, retryInMs });
        warnings.failed(`${code}\n${message}`, `polling ${fetcher.name} for releases failed (${code}): ${message}; retrying with backoff (warned again only when this changes)`);
      },
    });
  }

  /** Removes temp files a killed master left, reads the version floor, then starts polling. */
  async start(): Promise<void> {
    await this.prepare();
    this.loop.start();
  }

  /** start() without the loop: for a caller that polls once itself (a self-updating CLI). */
  async prepare(): Promise<void> {
    const { bundlePath, log } = this.#host;
    this.#folder = await isFolderBundle(bundlePath);
    const removed = await cleanupStaleTemps(bundlePath).catch(() => []);
    for (const file of removed) log.debug(`removed stale temp file ${file}`);
    if (this.#folder) {
      const debris = await cleanupFolderDebris(bundlePath).catch(() => []);
      for (const entry of debris) log.debug(`removed what a killed master left: ${entry}`);
    }
    const target = await fs.promises.realpath(bundlePath).catch(() => bundlePath);
    if (await removeStaleLock(target)) log.debug(`removed the stale lock of ${target}`);
    this.#floor = higher(this.#floor, await readVersionFloor(bundlePath, (message) => log.warn(message)));
    for (const entry of await readRolledBack(bundlePath, (message) => log.warn(message))) this.#rejections.restore(entry);
    if (!this.#config.verify.publicKey && !this.#config.verify.allowDowngrade) {
      log.warn('verify.publicKey is not set: an older release that reports no version cannot be detected as a downgrade (see docs/signing.md)');
    }
  }

  async poll(signal: AbortSignal): Promise<void> {
    const polled = Date.now();
    const release = await this.#ask(signal);
    if (release === undefined || !this.#screen(release)) return;
    this.#host.emit({ type: 'upgrade-available', source: release.source, id: release.id, version: release.version });
    const attempt: Attempt = { release, polled };
    const downloadStart = Date.now();
    const staged = await this.#download(attempt, signal);
    if (staged === undefined) return;
    try {
      const verifyStart = Date.now();
      let signedVersion: string | undefined;
      let checkMs = 0;
      try {
        // The same bytes refused before (a corrupted transfer repeated, a replay without an id).
        if (this.#rejections.refusedBytes(release, staged.rawSha256)) return this.#skipOnce(release, 'rejected-before', staged.rawSha256);
        ({ signedVersion } = verifyIntegrity(staged, release, this.#config.verify));
        attempt.candidate = await this.#prepare(staged);
        if (attempt.candidate.sha256 === this.#host.sha256 || attempt.candidate.live) return await this.#alreadyInstalled(release, attempt.candidate);
        if (this.#rejections.refusedBytes(release, attempt.candidate.sha256)) {
          await attempt.candidate.discard();
          return this.#skipOnce(release, 'rejected-before', attempt.candidate.sha256);
        }
        const checkStart = Date.now();
        attempt.version = await this.#check(attempt, attempt.candidate, signedVersion);
        checkMs = Date.now() - checkStart;
        await this.#preUpgrade(attempt.candidate.path);
      } catch (error) {
        // Cleaned up before the event, so whoever hears of the refusal finds nothing left.
        await attempt.candidate?.discard();
        await discardStaged(staged);
        if (isOverseerError(error) && LOCAL_FAULTS.has(error.code)) throw error;
        this.#refuse(attempt, error);
        return;
      }
      const timings = { pollMs: downloadStart - polled, downloadMs: verifyStart - downloadStart, verifyMs: Date.now() - verifyStart - checkMs, checkMs, swapMs: 0, handoffMs: 0 };
      await this.#install(attempt, attempt.candidate, timings);
    } finally {
      await discardStaged(staged);
    }
  }

  /** Step ask: what the source holds now, unless the host is stopping. */
  async #ask(signal: AbortSignal): Promise<Release | undefined> {
    const { publicKey, sha256 } = this.#config.verify;
    const wants = { signature: publicKey !== undefined, sha256: sha256 === 'required' };
    const { bundlePath, emit } = this.#host;
    const publicKeys = this.#config.verify.publicKeys ?? (publicKey === undefined ? [] : [publicKey]);
    const result = await this.#fetcher.fetch({ signal, currentSha256: this.#host.sha256, currentVersion: this.#version, wants, publicKeys, bundlePath, emit: (event) => emit(event), warn: (message) => this.#host.log.warn(message) });
    return result.type === 'none' || this.#host.stopping ? undefined : result.release;
  }

  /** Step screen: false for what is installed, was refused before, or lacks what verify requires. */
  #screen(release: Release): boolean {
    const skip = release.id !== undefined && release.id === this.#installedId ? 'known-id' : this.#rejections.refusedBefore(release) ? 'rejected-before' : undefined;
    if (skip !== undefined) {
      this.#skipOnce(release, skip);
      return false;
    }
    try {
      verifyDeclared(release, this.#config.verify);
      return true;
    } catch (error) {
      // Not remembered: the checksum or signature may be published after the release.
      const key = `${isOverseerError(error) ? error.code : ''}:${release.id ?? ''}`;
      if (!this.#reported.has(key)) {
        this.#reported.add(key);
        this.#emitRejected({ release, polled: 0 }, error);
      }
      return false;
    }
  }

  /** Step download: stages the bytes beside the bundle. Undefined when the release is at fault (too large). */
  async #download(attempt: Attempt, signal: AbortSignal): Promise<StagedRelease | undefined> {
    const { release } = attempt;
    let lastProgress = 0;
    const pace = createDownloadPacer();
    let body: Awaited<ReturnType<Release['open']>> | undefined;
    try {
      body = await release.open(signal);
      // stageRelease touches the file system before it pipes the body: an error the body
      // emits meanwhile must not go unhandled (the pipeline still sees the errored stream).
      if (body instanceof Readable) body.on('error', () => {});
      attempt.staged = await stageRelease({
        bundlePath: this.#host.bundlePath,
        body,
        gzip: release.gzip === true,
        maxBytes: this.#config.maxBundleSize,
        prehash: this.#config.verify.publicKey !== undefined,
        signal,
        ...(release.size === undefined ? {} : { expectedSize: release.size }),
        onWait: (received) => pace.idle(received),
        onProgress: (received, total) => {
          pace(received);
          const now = Date.now();
          if (now - lastProgress < PROGRESS_EVERY_MS && received !== total) return;
          lastProgress = now;
          this.#host.emit({ type: 'upgrade-progress', source: release.source, received, total });
        },
      });
      return attempt.staged;
    } catch (error) {
      if (body instanceof Readable) body.destroy();
      // Network trouble throws (the fetch loop backs off and retries); a release too large does not.
      if (!isOverseerError(error) || !RELEASE_FAULTS.has(error.code)) throw error;
      this.#refuse(attempt, error);
      return undefined;
    }
  }

  /**
   * Step prepare: what verified bytes become: the staged file itself, or for a folder bundle
   * the folder its archive extracts to. Extraction refuses unsafe archives (ERR_OVERSEER_UNSAFE_ARCHIVE).
   */
  async #prepare(staged: StagedRelease): Promise<Candidate> {
    const bundlePath = this.#host.bundlePath;
    if (!this.#folder) {
      let targetPath = staged.targetPath;
      return {
        path: staged.tempPath,
        sha256: staged.sha256,
        live: false,
        swap: async () => {
          targetPath = (await swapBundle(staged)).targetPath;
        },
        restore: () => restorePrevious(targetPath),
        discard: () => discardStaged(staged),
      };
    }
    const installed = await installFolder(bundlePath, staged.tempPath);
    // An existing releases/<hash> may be the live one: only a folder this poll made is ours to remove.
    const { created } = installed;
    const current = created ? undefined : await fs.promises.realpath(bundlePath).catch(() => undefined);
    let live = false;
    return {
      path: installed.dir,
      sha256: installed.sha256,
      live: current === installed.dir,
      swap: async () => {
        await swapFolder(bundlePath, installed.dir, { keep: this.#config.keepReleases });
        live = true;
      },
      restore: () => restorePreviousFolder(bundlePath),
      discard: async () => {
        if (created && !live) await discardFolder(installed.dir);
      },
    };
  }

  /** The source offers what is installed (a restart, no ETag, a replay): nothing is touched. */
  async #alreadyInstalled(release: Release, candidate: Candidate): Promise<void> {
    this.#installedId = release.id;
    await candidate.discard();
    this.#skipOnce(release, 'same-sha256', candidate.sha256);
  }

  /** Step check: the echo-token handshake, then the version it may be installed as. */
  async #check(attempt: Attempt, candidate: Candidate, signedVersion: string | undefined): Promise<string | undefined> {
    const { release } = attempt;
    const answer = await this.#host.check(candidate.path, this.#config.checkTimeout);
    attempt.version = signedVersion ?? answer.version ?? release.version;
    const { publicKey, allowDowngrade } = this.#config.verify;
    return decideVersion(
      { signed: signedVersion, handshake: answer.version, declared: release.version },
      this.#floor,
      // A signed manifest that pulled the running version sanctions exactly this downgrade.
      { trusted: publicKey !== undefined || release.manifest !== undefined, allowDowngrade: allowDowngrade || release.manifest?.downgrade === true, source: release.source },
    );
  }

  async #preUpgrade(path: string): Promise<void> {
    if (!this.#config.preUpgrade) return;
    try {
      await this.#config.preUpgrade(path);
    } catch (error) {
      throw new OverseerError('ERR_OVERSEER_UPGRADE_CANCELLED', `preUpgrade cancelled the upgrade: ${describeError(error)}`, { cause: error });
    }
  }

  /** Steps install and hand off: swap under the lock, restart ready-first, roll back if it fails. */
  async #install(attempt: Attempt, candidate: Candidate, timings: { -readonly [K in keyof UpgradeTimings]: number }): Promise<void> {
    const { release, version } = attempt;
    const { sha256 } = candidate;
    // A newer release ends the probation of the one before: its verdict (and a rollback under way) settles first.
    await this.#rollback.settle();
    const swapStart = Date.now();
    try {
      await candidate.swap();
    } catch (error) {
      // Locked or not writable: nothing changed; the fetch loop backs off and tries again.
      await candidate.discard();
      throw error;
    }
    timings.swapMs = Date.now() - swapStart;
    const previous = { sha256: this.#host.sha256, version: this.#version };
    this.#host.setBundle(sha256);
    this.#version = version;
    this.#installedId = release.id;
    const restart = !this.#config.noRestart && !this.#config.noRestartAfterFetch;
    const handoffStart = Date.now();
    const outcome = restart ? await this.#host.handoff('upgrade') : { ok: true as const };
    timings.handoffMs = Date.now() - handoffStart;
    const installed = { release, sha256, rawSha256: attempt.staged?.rawSha256, restore: () => candidate.restore() };
    if (outcome.ok) {
      await this.#raiseFloor(version, release.manifest?.downgrade === true);
      this.#host.emit({ type: 'upgrade-applied', source: release.source, sha256, version, timings, restart });
      if (restart) this.#rollback.watch(installed, previous);
      return;
    }
    if (this.#host.stopping) return;
    await this.#rollback.rollBack(installed, previous, { error: outcome.error.message, cause: 'not-ready' });
  }

  /** Persists the highest version installed, so a restart does not reopen the downgrade window. */
  async #raiseFloor(version: string | undefined, sanctioned = false): Promise<void> {
    if (version === undefined) return;
    const floor = this.#config.verify.allowDowngrade || sanctioned ? version : higher(this.#floor, version);
    if (floor === undefined || floor === this.#floor) return;
    this.#floor = floor;
    await writeVersionFloor(this.#host.bundlePath, floor).catch((error: unknown) => {
      this.#host.log.warn(`cannot write the version floor beside ${this.#host.bundlePath}: ${describeError(error)}; a restart starts from config.version`);
    });
  }

  /** A step refused the release: remember it (unless preUpgrade only cancelled) and say so. */
  #refuse(attempt: Attempt, error: unknown): void {
    const code = isOverseerError(error) ? error.code : 'ERR_OVERSEER_CHECK_FAILED';
    if (code !== 'ERR_OVERSEER_UPGRADE_CANCELLED') {
      this.#rejections.remember(attempt.release, code, { rawSha256: attempt.staged?.rawSha256, sha256: attempt.candidate?.sha256 ?? attempt.staged?.sha256 });
    }
    this.#emitRejected(attempt, error);
  }

  #emitRejected(attempt: Attempt, error: unknown): void {
    const { release, staged, candidate } = attempt;
    this.#host.emit({
      type: 'upgrade-rejected', source: release.source, sha256: candidate?.sha256 ?? staged?.sha256, error: describeError(error),
      code: isOverseerError(error) ? error.code : 'ERR_OVERSEER_CHECK_FAILED',
      receivedSha256: staged?.rawSha256, declaredSha256: release.sha256?.toLowerCase(), version: attempt.version ?? release.version,
    });
    this.#host.log.warn(`rejected ${release.source}: ${describeError(error)}`);
  }

  /** Says once per release that it is being skipped, not on every poll. */
  #skipOnce(release: Release, why: 'known-id' | 'rejected-before' | 'same-sha256', sha256 = release.sha256): void {
    const key = `${why}:${release.id ?? ''}:${sha256 ?? ''}`;
    if (this.#reported.has(key)) return;
    this.#reported.add(key);
    this.#host.emit({ type: 'upgrade-skipped', source: release.source, why });
  }
}
