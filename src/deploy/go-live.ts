/**
 * Going live in an `overseer deploy` application: `release` (copy release/ into a private folder,
 * verify the copy, make it current/, hand off ready-first) and `rollback` (the newest good archive
 * becomes current/ again), each undone by itself when the new release does not get ready; then
 * archive/ is pruned.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readAppConfig, type AppConfig } from './app-config.js';
import type { AppMasters } from './app-master.js';
import { DEPLOY_DEFAULTS, codeOf, type App, type DeployOptions, type EventBody } from './app.js';
import { checkAppFolders, checkFolder, emptyRelease } from './folders.js';
import { FAILED_SUFFIX, ROLLED_BACK_SUFFIX, newArchivePath, newestGoodArchive, pruneArchives, releaseCompleteness, verifyRelease } from './release.js';
import { openStaged, stageCopy } from './staging.js';
import { OverseerError, describeError, isOverseerError } from '../errors.js';
import type { ResolvedProbation } from '../core/config.js';
import { watchProbation } from './probation.js';

/** What going live needs from the deployment. */
export interface GoLiveHost {
  readonly options: DeployOptions;
  readonly masters: AppMasters;
  emit(body: EventBody): void;
  stopping(): boolean;
}

/**
 * The `release` command; returns what it did, or undefined while release/ is still being staged.
 * release/ is copied into a private folder first, verified there and goes live from there, so
 * what goes live is exactly what was verified.
 */
export async function release(host: GoLiveHost, app: App): Promise<string | undefined> {
  const config = await readAppConfig(app.dir);
  await checkAppFolders(app);
  const completeness = await releaseCompleteness(app.release, config.quietPeriod ?? host.options.quietPeriod);
  if (!completeness.complete) {
    // Said once per reason; the quiet period's countdown is not a new reason.
    const reason = completeness.why.replace(/\d+ ms ago/, '');
    if (app.waiting !== reason) host.emit({ type: 'release-waiting', app: app.name, why: completeness.why });
    app.waiting = reason;
    return undefined;
  }
  app.waiting = undefined;
  const staging = await stageCopy(app.release, app.dir);
  let archived: string | undefined;
  try {
    const verification = await verifyRelease(staging, { publicKey: config.publicKey, label: app.name, origin: app.release });
    host.emit({ type: 'release-verified', app: app.name, checked: verification.checked, keyId: verification.keyId });
    await openStaged(staging, app.release);
    ({ archived } = await goLive(host, app, config, staging, '', 'the release', () => emptyRelease(app)));
  } finally {
    // Gone once it went live (renamed); a refused copy is removed, and release/ stays as it was.
    await fs.promises.rm(staging, { recursive: true, force: true });
  }
  return `release is live${archived ? `; the previous one is archive/${path.basename(archived)}` : ''}`;
}

/** The `rollback` command. */
export async function rollback(host: GoLiveHost, app: App): Promise<string> {
  const config = await readAppConfig(app.dir);
  await checkAppFolders(app, [app.archive]);
  const target = await newestGoodArchive(app.archive);
  if (target === undefined) {
    throw new OverseerError(
      'ERR_OVERSEER_NO_ARCHIVE',
      `archive/ holds no earlier release to roll back to (failed and rolled-back ones are never taken); stage one in release/ and drop command/release`,
      { subject: app.archive },
    );
  }
  const { archived } = await goLive(host, app, config, path.join(app.archive, target), ROLLED_BACK_SUFFIX, `archive/${target}`);
  return `archive/${target} is live again${archived ? `; the release it replaced is archive/${path.basename(archived)}` : ''}`;
}

/**
 * Makes `source` the current release: current/ → archive/, source → current/, then a
 * ready-first handoff (or a start, when the app is not running). When the new release does
 * not get ready, its folder goes to archive/…-failed and the previous one comes back, still
 * serving. Throws ERR_OVERSEER_ROLLED_BACK then. `moved` runs once `source` is current/.
 */
async function goLive(
  host: GoLiveHost, app: App, config: AppConfig, source: string, oldSuffix: string, what: string, moved?: () => Promise<void>,
): Promise<{ archived: string | undefined }> {
  const { masters } = host;
  if (host.stopping()) throw new OverseerError('ERR_OVERSEER_SHUTTING_DOWN', 'overseer deploy is stopping');
  const live = await masters.waitLive(app);
  if (!live && masters.isActive(app)) await masters.stop(app);
  let archived: string | undefined;
  if (fs.existsSync(app.current)) {
    archived = newArchivePath(app.archive, oldSuffix);
    await fs.promises.rename(app.current, archived);
  }
  try {
    await fs.promises.rename(source, app.current);
  } catch (error) {
    if (archived) await fs.promises.rename(archived, app.current);
    throw new OverseerError('ERR_OVERSEER_SWAP_FAILED', `cannot move ${what} into current/: ${describeError(error)}`, { subject: source, cause: error });
  }
  // release/ emptied: a failure to do so is said, and the release goes on.
  await moved?.().catch((error: unknown) => host.emit({ type: 'app-error', app: app.name, error: describeError(error), code: codeOf(error) }));
  app.wanted = true;
  let failedProbation = false;
  try {
    if (live) {
      const pid = await masters.handoff(app, config);
      if (config.probation) await probation(host, app, config.probation, pid, archived !== undefined);
    } else await masters.startAndWaitReady(app, config);
  } catch (error) {
    failedProbation = isOverseerError(error) && error.code === 'ERR_OVERSEER_PROBATION_FAILED';
    const failed = newArchivePath(app.archive, FAILED_SUFFIX);
    if (!live && masters.isActive(app)) await masters.stop(app);
    await fs.promises.rename(app.current, failed);
    if (archived) await fs.promises.rename(archived, app.current);
    let after = 'the previous release is current again';
    if (!archived) after = 'there is no previous release to go back to';
    else if (failedProbation) {
      // The failed release serves: the previous one is handed back to, ready-first.
      after = await masters.handoff(app, config).then(
        () => 'the previous release is current again and serves',
        (handoffError: unknown) => `the previous release is current again, but it did not take over: ${describeError(handoffError)}`,
      );
    } else if (live && app.masterPid !== undefined) after += ' and kept serving';
    else if (!host.stopping() && !masters.isActive(app)) {
      after += ' and was started again';
      await masters.start(app).catch((startError: unknown) => {
        after = `the previous release is current again, but it could not be started: ${describeError(startError)}`;
      });
    }
    await prune(host, app, config);
    throw new OverseerError(
      'ERR_OVERSEER_ROLLED_BACK',
      `${what} ${failedProbation ? 'failed its probation' : 'did not get ready'} (${describeError(error)}); ${after}; the failed one is archive/${path.basename(failed)}`,
      { subject: failed, cause: error },
    );
  }
  await prune(host, app, config);
  return { archived: archived && fs.existsSync(archived) ? archived : undefined };
}

/** The probation of the child that took over (probation.ts); throws ERR_OVERSEER_PROBATION_FAILED with the evidence. */
async function probation(host: GoLiveHost, app: App, settings: ResolvedProbation, pid: number, canRollBack: boolean): Promise<void> {
  const started = Date.now();
  host.emit({ type: 'release-probation', app: app.name, outcome: 'started', pid, durationMs: settings.duration });
  const failure = await watchProbation(app, settings, pid, app.addresses);
  const durationMs = Date.now() - started;
  if (!failure) {
    host.emit({ type: 'release-probation', app: app.name, outcome: 'passed', pid, durationMs });
    return;
  }
  host.emit({ type: 'release-probation', app: app.name, outcome: 'failed', pid, durationMs, ...failure });
  if (!canRollBack) return;
  throw new OverseerError('ERR_OVERSEER_PROBATION_FAILED', failure.error, { subject: app.current });
}

async function prune(host: GoLiveHost, app: App, config: AppConfig): Promise<void> {
  // Again just before removing anything: a link put in its place meanwhile is not followed.
  await checkFolder(app.archive);
  const removed = await pruneArchives(app.archive, config.archives ?? host.options.archives ?? DEPLOY_DEFAULTS.archives);
  if (removed.length > 0) host.emit({ type: 'archives-pruned', app: app.name, removed });
}
