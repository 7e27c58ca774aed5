/**
 * The self-updater's work, loaded only by the background check and by selfUpdate(): one poll of
 * the upgrade pipeline (src/upgrade/upgrader.ts, the same steps run() uses) over a host that
 * has no children, under a lock per install so two invocations never both download, with the
 * outcome written to the state file for the next run to tell.
 */
import fs from 'node:fs';
import path from 'node:path';
import { normalizeConfig } from '../core/config.js';
import { commandFor } from '../core/launch/sea.js';
import { describeError, isOverseerError } from '../errors.js';
import { createLog, type OverseerEvent } from '../events.js';
import type { Fetcher } from '../upgrade/fetcher.js';
import { bundleSha256 } from '../upgrade/hash.js';
import type { UpgradeHost } from '../upgrade/host.js';
import { withBundleLock } from '../upgrade/lock.js';
import { Upgrader } from '../upgrade/upgrader.js';
import { NODE_CHECK_ADVICE, runEchoCheck } from '../upgrade/verify.js';
import type { SelfUpdateOptions, SelfUpdateResult, SelfUpdateSettings } from './options.js';
import { readState, updateState } from './state-file.js';

/** A background check that runs longer than this (a stalled download) is given up. */
const BACKGROUND_DEADLINE = 10 * 60 * 1000;

/**
 * The check lock goes stale this long after its holder stops refreshing it (killed): the next
 * check after that runs. proper-lockfile's floor is 2000.
 */
const LOCK_STALE = 5_000;

/** Errors that say the install cannot be written (not the network, not the release). */
const INSTALL_FAULTS = new Set(['ERR_OVERSEER_SWAP_FAILED']);

type Outcome =
  | { readonly type: 'updated'; readonly to: string | null }
  | { readonly type: 'up-to-date'; readonly found?: string | undefined }
  | { readonly type: 'rejected' | 'not-writable'; readonly message: string; readonly found?: string | undefined };

/** The background updater: one check if no other is under way, its outcome in the state file, quiet on failure. */
export async function checkInBackground(settings: SelfUpdateSettings): Promise<void> {
  try {
    await withCheckLock(settings, 0, async () => {
      record(settings, (state) => ({ ...state, checking: { pid: process.pid, since: Date.now() } }));
      try {
        await updateOnce(settings, { signal: AbortSignal.timeout(BACKGROUND_DEADLINE) });
      } catch (error) {
        // A bad verify option is the tool's bug: told by the next run, as a problem.
        if (isOverseerError(error) && error.code === 'ERR_OVERSEER_INVALID_CONFIG') {
          const message = `${settings.name} cannot check for updates: ${error.message}`;
          record(settings, (state) => ({ ...state, lastResult: 'failed', lastError: error.message, problem: { message, at: Date.now(), told: false } }));
          return;
        }
        // No network, a source down: quiet, tried again at the next interval.
        record(settings, (state) => ({ ...state, lastResult: 'failed', lastError: describeError(error) }));
      } finally {
        record(settings, ({ checking: _, ...state }) => state);
      }
    });
  } catch (error) {
    // Another check holds the lock: it does this one's work.
    if (isOverseerError(error) && error.code === 'ERR_OVERSEER_LOCKED') return;
    record(settings, (state) => ({ ...state, lastResult: 'failed', lastError: describeError(error) }));
  }
}

/** selfUpdate(): one check now, waiting for a background check under way. */
export async function updateNow(settings: SelfUpdateSettings, options: SelfUpdateOptions): Promise<SelfUpdateResult> {
  fs.mkdirSync(path.dirname(settings.stateFile), { recursive: true, mode: 0o700 });
  const asked = Date.now();
  try {
    return await withCheckLock(settings, 40, async () => {
      const { updated } = readState(settings.stateFile);
      record(settings, (state) => ({ ...state, lastCheck: Date.now() }));
      // A check under way when this one was asked (another run's) installed while it waited: that is this update.
      if (updated && updated.at >= asked && updated.from === settings.version) return { updated: true, from: updated.from, to: updated.to };
      const outcome = await updateOnce(settings, options);
      if (outcome.type === 'updated') return { updated: true, from: settings.version, to: outcome.to };
      return outcome.type === 'up-to-date' ? { updated: false, reason: 'up-to-date' } : { updated: false, reason: outcome.type, message: outcome.message };
    });
  } catch (error) {
    if (isOverseerError(error) && error.code === 'ERR_OVERSEER_LOCKED') {
      return { updated: false, reason: 'busy', message: `another update of ${settings.name} is under way; try again in a moment` };
    }
    throw error;
  }
}

/** One check per install at a time, across processes: the lock is `<state file>.lock`. */
function withCheckLock<T>(settings: SelfUpdateSettings, retries: number, fn: () => Promise<T>): Promise<T> {
  return withBundleLock(settings.stateFile, fn, { stale: LOCK_STALE, retries });
}

/** Writes the state, never failing the check for it (the state is advice; the install is what counts). */
function record(settings: SelfUpdateSettings, change: Parameters<typeof updateState>[1]): void {
  try {
    updateState(settings.stateFile, change);
  } catch {
    // The cache directory is not writable: the next run checks again, nothing worse.
  }
}

/** Asks the source, and installs what it offers through the upgrade pipeline; the outcome is recorded. */
async function updateOnce(settings: SelfUpdateSettings, options: SelfUpdateOptions): Promise<Outcome> {
  const outcome = await poll(settings, options);
  const at = Date.now();
  const found = outcome.type === 'updated' ? outcome.to : outcome.found;
  record(settings, ({ lastError: _, ...state }) => ({
    ...state,
    lastResult: outcome.type,
    ...(found === undefined ? {} : { found }),
    ...(outcome.type === 'updated' ? { updated: { from: settings.version, to: outcome.to, at, told: false } } : {}),
    ...(outcome.type === 'rejected' || outcome.type === 'not-writable' ? { problem: { message: outcome.message, at, told: false } } : {}),
  }));
  return outcome;
}

async function poll(settings: SelfUpdateSettings, options: SelfUpdateOptions): Promise<Outcome> {
  if (!settings.fetcher) return { type: 'up-to-date' };
  const signal = options.signal ?? new AbortController().signal;
  let target: string;
  try {
    target = await fs.promises.realpath(settings.bundlePath);
  } catch (error) {
    return { type: 'not-writable', message: `${settings.name} cannot update itself: its installed file ${settings.bundlePath || '(none: no entry script)'} cannot be read (${describeError(error)}); set bundlePath in selfUpdating()` };
  }
  // Checked in full here, where the verification code is loaded anyway.
  const config = normalizeConfig({
    program: () => {}, version: settings.version, verify: settings.verify ?? {}, noRestart: true, noWarn: true, bundlePath: target,
    ...(settings.checkTimeout === undefined ? {} : { checkTimeout: settings.checkTimeout }),
    ...(settings.maxBundleSize === undefined ? {} : { maxBundleSize: settings.maxBundleSize }),
  });
  const fetcher = await settings.fetcher();
  try {
    const sha256 = await bundleSha256(target);
    if (!(await canWrite(path.dirname(target)))) return await notWritable(settings, fetcher, target, sha256, signal);
    let applied: Extract<OverseerEvent, { type: 'upgrade-applied' }> | undefined;
    let rejected: Extract<OverseerEvent, { type: 'upgrade-rejected' | 'upgrade-rolled-back' }> | undefined;
    let found: string | undefined;
    const host: UpgradeHost = {
      bundlePath: target,
      sha256,
      stopping: false,
      log: createLog({ debug: false, noWarn: true }, 'self-update'),
      emit(body) {
        const event = { ...body, at: Date.now() } as OverseerEvent;
        if (event.type === 'upgrade-available') found = event.version;
        if (event.type === 'upgrade-applied') applied = event;
        if (event.type === 'upgrade-rejected' || event.type === 'upgrade-rolled-back') rejected = event;
        options.onEvent?.(event);
      },
      setBundle() {},
      // The release is run the way the tool is: this Node with its flags, or the executable itself.
      check: (file, timeout) => {
        const { command, args } = commandFor(file, []);
        return runEchoCheck({ file, timeout, command, args, advice: `${NODE_CHECK_ADVICE} (or selfUpdating() from overseer/self-update)` });
      },
      // No children: the next run of the tool is the handoff, and there is nothing to watch after it.
      handoff: async () => ({ ok: true }),
      probation: async () => ({ outcome: 'passed' }),
      endProbation() {},
      serving: true,
    };
    const upgrader = new Upgrader(host, config, fetcher);
    await upgrader.prepare();
    try {
      await upgrader.poll(signal);
    } catch (error) {
      if (isOverseerError(error) && INSTALL_FAULTS.has(error.code)) {
        return { type: 'not-writable', found, message: `${settings.name} cannot install its update: ${error.message}` };
      }
      throw error;
    }
    if (applied) return { type: 'updated', to: applied.version ?? null };
    if (rejected) {
      return { type: 'rejected', found, message: `${settings.name} refused an update from ${rejected.source} (${rejected.code}): ${rejected.error}; it keeps running ${settings.version}` };
    }
    return { type: 'up-to-date', found };
  } finally {
    await fetcher.close?.();
  }
}

async function canWrite(directory: string): Promise<boolean> {
  try {
    await fs.promises.access(directory, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * A root-owned global install: ask the source, download nothing, and say what is available
 * and how to get updates (an install the user owns).
 */
async function notWritable(settings: SelfUpdateSettings, fetcher: Fetcher, target: string, sha256: string, signal: AbortSignal): Promise<Outcome> {
  const result = await fetcher.fetch({ signal, currentSha256: sha256, currentVersion: settings.version });
  if (result.type === 'none') return { type: 'up-to-date' };
  const { version } = result.release;
  if (version !== undefined && version === settings.version) return { type: 'up-to-date', found: version };
  const uid = process.getuid?.();
  return {
    type: 'not-writable',
    found: version,
    message: `${settings.name} ${version ?? '(a new build)'} is available, but ${settings.name} cannot update itself: ${path.dirname(target)} is not writable${uid === undefined ? '' : ` by user ${uid}`}; reinstall it in a prefix you own (npm config set prefix ~/.local, then npm install -g again) or update it as the owner of that directory`,
  };
}


