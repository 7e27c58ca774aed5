/**
 * Builds a running master from a config: resolves and hashes the bundle, constructs the Master
 * with its launcher, stop hooks and (with a fetcher) the upgrader, binds and forks the first child.
 */
import path from 'node:path';
import { OverseerError, describeError } from '../errors.js';
import { createLog } from '../events.js';
import { bundleSha256 } from '../upgrade/hash.js';
import type { UpgradeHost } from '../upgrade/host.js';
import { NodeLauncher } from './launch/node.js';
import { isSea } from './launch/sea.js';
import type { Launcher } from './launch/launcher.js';
import { Master, type MasterConfig, type Poller } from './master.js';
import { setMasterFlags } from './master-flags.js';

export interface StartOptions {
  /** How children run. @default a NodeLauncher: a fork of the bundle that calls run() */
  readonly launcher?: Launcher | undefined;
  /** More signals that start a handoff besides config.restartSignal (the CLI adds SIGHUP). */
  readonly extraRestartSignals?: readonly NodeJS.Signals[] | undefined;
  /** Run in order when the master stops, before it exits (the CLI releases its lock here). */
  readonly onStop?: ReadonlyArray<() => void | Promise<void>> | undefined;
}

/** Resolves the bundle, hashes it, binds, forks the first child and starts polling for releases. */
export async function startMaster(config: MasterConfig, options: StartOptions = {}): Promise<Master> {
  // First thing: the young generation grew in the first scavenges after run() was called.
  // Every master, with a fetcher or not: without them a master's own code kept being optimized on
  // V8's worker threads through its handoffs, and their malloc arenas grew by ~1-2 MB over the
  // first thousand (docs/benchmarks.md §9 "Soak"); with them they stay at ~0.2 MB.
  setMasterFlags();
  // A single executable application is its own bundle.
  const bundlePath = config.bundlePath ?? (isSea() ? process.execPath : path.resolve(process.argv[1] ?? ''));
  let sha256: string;
  try {
    sha256 = await bundleSha256(bundlePath);
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `cannot read the bundle ${bundlePath}: ${describeError(error)}; set config.bundlePath to the file to run`, { cause: error, subject: 'bundlePath' });
  }
  const log = createLog(config, 'master');
  // Said before anything forks: a program that calls state.listen() would only fail in its child.
  if (options.launcher === undefined && config.addresses.length === 0) {
    log.warn('no address configured: the master binds no socket and state.listen() will fail; give run() an address such as { address: 3000 } (fine to ignore for a program that serves nothing)');
  }
  const master = new Master({
    config, bundlePath, sha256, log,
    launcher: options.launcher ?? new NodeLauncher(log),
    extraRestartSignals: options.extraRestartSignals,
    onStop: options.onStop,
    poller: config.fetcher ? await upgraderFor(config) : undefined,
  });
  await master.start();
  return master;
}

/** The upgrader as the master's poller; loaded only by masters that have a fetcher. */
async function upgraderFor(config: MasterConfig): Promise<((host: UpgradeHost) => Poller) | undefined> {
  const fetcher = config.fetcher;
  if (!fetcher) return undefined;
  const { Upgrader } = await import('../upgrade/upgrader.js');
  return (host) => {
    const upgrader = new Upgrader(host, config, fetcher);
    return {
      start: () => upgrader.start(),
      pollNow: () => upgrader.loop.pollNow(),
      busy: () => upgrader.loop.polling,
      // A CLI under noRestart lets an upgrade under way land before the master exits.
      stop: () => upgrader.loop.stop(config.noRestart),
    };
  };
}
