/**
 * One poll of the upgrade pipeline: ask the fetcher → skip what is installed or was rejected →
 * download to a temp file beside the bundle while hashing → verify (sha256, signature, echo-token
 * handshake, version) → preUpgrade → swap under the lock → ready-first handoff → on failure,
 * restore `.previous`, keep the old child, and never retry that release.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { cleanupStaleTemps, discardStaged, restorePrevious, stageRelease, swapBundle, type StagedRelease } from './bundle.js';

import { OverseerError, describeError, isOverseerError } from '../errors.js';
import type { Fetcher, Release } from './fetcher.js';
import { FetchLoop } from './fetch-loop.js';
import { discardFolder, installFolder, restorePreviousFolder, swapFolder } from './folder.js';
import { isFolderBundle } from './hash.js';
import { removeStaleLock } from './lock.js';
import { createCollectionPacer } from './memory.js';
import type { UpgradeHost, UpgradeSettings } from './host.js';
import { verifyDeclared, verifyIntegrity, verifyVersion } from './verify.js';

/** Errors that say the release itself is bad: it is remembered and not downloaded again. */
const RELEASE_FAULTS = new Set([
  'ERR_OVERSEER_TOO_LARGE', 'ERR_OVERSEER_CHECKSUM_MISMATCH', 'ERR_OVERSEER_SIGNATURE_INVALID',
  'ERR_OVERSEER_CHECK_FAILED',
  'ERR_OVERSEER_DOWNGRADE',
]);

/** Downloads collect spent read buffers this often (see memory.ts). */
const COLLECT_EVERY_BYTES = 4 * 1024 * 1024;

/** Progress events at most this often, so a fast download does not flood onEvent. */
const PROGRESS_EVERY_MS = 250;

/** A verified-to-be release on disk, ready to go live or be thrown away. */
interface Candidate {
  /** What the echo-token check and preUpgrade see: the staged file or the extracted folder. */
  readonly path: string;
  readonly sha256: string;
  swap(): Promise<void>;
  restore(): Promise<void>;
  discard(): Promise<void>;
}

export class Upgrader {
  readonly #host: UpgradeHost;
  readonly #config: UpgradeSettings;
  readonly #fetcher: Fetcher;
  #version: string | undefined;
  #installedId: string | undefined;
  readonly #rejectedIds = new Set<string>();
  readonly #rejectedShas = new Set<string>();
  readonly #reported = new Set<string>();
  #folder = false;
  readonly loop: FetchLoop;

  constructor(host: UpgradeHost, config: UpgradeSettings, fetcher: Fetcher) {
    this.#host = host;
    this.#config = config;
    this.#fetcher = fetcher;
    this.#version = config.version;
    this.loop = new FetchLoop({
      fetcher,
      minInterval: config.minFetchInterval,
      poll: (signal) => this.poll(signal),
      onFailure: (error, retryInMs) => host.emit({
        type: 'fetch-failed', fetcher: fetcher.name, error: describeError(error),
        code: isOverseerError(error) ? error.code : 'ERR_OVERSEER_FETCH_FAILED', retryInMs,
      }),
    });
  }

  /** Removes temp files a killed master left, then starts polling. */
  async start(): Promise<void> {
    this.#folder = await isFolderBundle(this.#host.bundlePath);
    const removed = await cleanupStaleTemps(this.#host.bundlePath).catch(() => []);
    for (const file of removed) this.#host.log.debug(`removed stale temp file ${file}`);
    const target = await fs.promises.realpath(this.#host.bundlePath).catch(() => this.#host.bundlePath);
    if (await removeStaleLock(target)) this.#host.log.debug(`removed the stale lock of ${target}`);
    this.loop.start();
  }

  async poll(signal: AbortSignal): Promise<void> {
    const polled = Date.now();
    const result = await this.#fetcher.fetch({ signal, currentSha256: this.#host.sha256, currentVersion: this.#version });
    if (result.type === 'none' || this.#host.stopping) return;
    const { release } = result;
    const source = release.source;
    if (release.id !== undefined && (release.id === this.#installedId || this.#rejectedIds.has(release.id))) {
      this.#skipOnce(release, release.id === this.#installedId ? 'known-id' : 'rejected-before');
      return;
    }
    if (release.sha256 !== undefined && this.#rejectedShas.has(release.sha256.toLowerCase())) {
      this.#skipOnce(release, 'rejected-before');
      return;
    }
    try {
      verifyDeclared(release, this.#config.verify);
    } catch (error) {
      // Not remembered: the checksum or signature may be published after the release.
      const code = isOverseerError(error) ? error.code : '';
      if (!this.#reported.has(`${code}:${release.id ?? ''}`)) {
        this.#reported.add(`${code}:${release.id ?? ''}`);
        this.#reject(release, undefined, error);
      }
      return;
    }
    this.#host.emit({ type: 'upgrade-available', source, id: release.id, version: release.version });

    const downloadStart = Date.now();
    const staged = await this.#download(release, signal);
    if (!staged) return;
    let candidate: Candidate | undefined;
    try {
      try {
        candidate = await this.#prepare(staged);
      } catch (error) {
        this.#remember(release, staged.sha256);
        this.#reject(release, staged.sha256, error);
        return;
      }
      const { sha256 } = candidate;
      if (sha256 === this.#host.sha256) {
        this.#installedId = release.id;
        await candidate.discard();
        this.#skipOnce(release, 'same-sha256', sha256);
        return;
      }
      if (this.#rejectedShas.has(sha256)) {
        this.#remember(release, undefined);
        this.#host.emit({ type: 'upgrade-skipped', source, why: 'rejected-before' });
        return;
      }
      const verifyStart = Date.now();
      let version: string | null;
      try {
        verifyIntegrity(staged, release, this.#config.verify);
        const answer = await this.#host.check(candidate.path, this.#config.checkTimeout);
        version = answer.version;
        verifyVersion(version, this.#version, this.#config.verify.allowDowngrade, source);
        await this.#preUpgrade(candidate.path);
      } catch (error) {
        if (!isOverseerError(error) || error.code !== 'ERR_OVERSEER_UPGRADE_CANCELLED') this.#remember(release, sha256);
        await candidate.discard();
        this.#reject(release, sha256, error);
        return;
      }
      const swapStart = Date.now();
      await candidate.swap();
      const previous = { sha256: this.#host.sha256, version: this.#version };
      this.#host.setBundle(sha256);
      this.#version = version ?? undefined;
      this.#installedId = release.id;
      const timings = { pollMs: downloadStart - polled, downloadMs: verifyStart - downloadStart, verifyMs: swapStart - verifyStart, swapMs: Date.now() - swapStart };
      const restart = !this.#config.noRestart && !this.#config.noRestartAfterFetch;
      if (!restart) {
        this.#host.emit({ type: 'upgrade-applied', source, sha256, version: this.#version, timings, restart });
        return;
      }
      const handoff = await this.#host.handoff('upgrade');
      if (handoff.ok) {
        this.#host.emit({ type: 'upgrade-applied', source, sha256, version: this.#version, timings, restart });
        return;
      }
      if (this.#host.stopping) return;
      await candidate.restore();
      this.#host.setBundle(previous.sha256);
      this.#version = previous.version;
      this.#installedId = undefined;
      this.#remember(release, sha256);
      this.#host.emit({ type: 'upgrade-rolled-back', source, sha256, error: handoff.error.message, code: 'ERR_OVERSEER_ROLLED_BACK' });
    } finally {
      await discardStaged(staged);
    }
  }

  /**
   * What a staged download becomes: the file itself, or for a folder bundle the folder its
   * archive extracts to. Extraction refuses unsafe archives (ERR_OVERSEER_CHECK_FAILED).
   */
  async #prepare(staged: StagedRelease): Promise<Candidate> {
    const bundlePath = this.#host.bundlePath;
    if (!this.#folder) {
      let targetPath = staged.targetPath;
      return {
        path: staged.tempPath,
        sha256: staged.sha256,
        swap: async () => {
          targetPath = (await swapBundle(staged)).targetPath;
        },
        restore: () => restorePrevious(targetPath),
        discard: () => discardStaged(staged),
      };
    }
    const installed = await installFolder(bundlePath, staged.tempPath);
    let live = false;
    return {
      path: installed.dir,
      sha256: installed.sha256,
      swap: async () => {
        await swapFolder(bundlePath, installed.dir);
        live = true;
      },
      restore: () => restorePreviousFolder(bundlePath),
      discard: async () => {
        if (!live) await discardFolder(installed.dir);
      },
    };
  }

  /** Undefined when the release itself is at fault (too large); network trouble throws. */
  async #download(release: Release, signal: AbortSignal): Promise<StagedRelease | undefined> {
    let lastProgress = 0;
    const pace = createCollectionPacer(COLLECT_EVERY_BYTES);
    let body: Awaited<ReturnType<Release['open']>> | undefined;
    try {
      body = await release.open(signal);
      // stageRelease touches the file system before it pipes the body: an error the body
      // emits meanwhile must not go unhandled (the pipeline still sees the errored stream).
      if (body instanceof Readable) body.on('error', () => {});
      return await stageRelease({
        bundlePath: this.#host.bundlePath,
        body,
        gzip: release.gzip === true,
        maxBytes: this.#config.maxBundleSize,
        signal,
        ...(release.size === undefined ? {} : { expectedSize: release.size }),
        onProgress: (received, total) => {
          pace(received);
          const now = Date.now();
          if (now - lastProgress < PROGRESS_EVERY_MS && received !== total) return;
          lastProgress = now;
          this.#host.emit({ type: 'upgrade-progress', source: release.source, received, total });
        },
      });
    } catch (error) {
      // A release too large for this master is a fault of the release, not of the network.
      if (body instanceof Readable) body.destroy();
      if (!isOverseerError(error) || !RELEASE_FAULTS.has(error.code)) throw error;
      this.#remember(release, undefined);
      this.#reject(release, undefined, error);
      return undefined;
    }
  }

  async #preUpgrade(tempPath: string): Promise<void> {
    if (!this.#config.preUpgrade) return;
    try {
      await this.#config.preUpgrade(tempPath);
    } catch (error) {
      throw new OverseerError('ERR_OVERSEER_UPGRADE_CANCELLED', `preUpgrade cancelled the upgrade: ${describeError(error)}`, { cause: error });
    }
  }

  #remember(release: Release, sha256: string | undefined): void {
    if (release.id !== undefined) this.#rejectedIds.add(release.id);
    if (sha256 !== undefined) this.#rejectedShas.add(sha256);
    if (release.sha256 !== undefined) this.#rejectedShas.add(release.sha256.toLowerCase());
  }

  #reject(release: Release, sha256: string | undefined, error: unknown): void {
    this.#host.emit({
      type: 'upgrade-rejected', source: release.source, sha256, error: describeError(error),
      code: isOverseerError(error) ? error.code : 'ERR_OVERSEER_CHECK_FAILED',
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
