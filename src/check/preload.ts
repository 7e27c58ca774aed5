/**
 * Loaded with `--import` into a run() app started by `overseer check` or overseer/testing. In
 * the master (no OVERSEER_ROLE yet) it installs the config hook of hook.ts: the app listens on
 * the check's loopback address instead of its own, takes the check's timeouts and, for
 * overseer/testing's publish(), polls a local release file; every lifecycle event goes to
 * stderr as an `overseer-event {json}` line, as `overseer run --events` prints them. Children
 * inherit the flag and do nothing here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileFetcher } from '../../fetchers/file.js';
import type { Config } from '../core/config.js';
import type { OverseerEvent } from '../events.js';
import { EVENT_LINE_PREFIX, ROLE_ENV } from '../protocol.js';
import { CHECK_HOOK, type ConfigHook } from './hook.js';

export const CHECK_MASTER_ENV = 'OVERSEER_CHECK_MASTER';
/** The deadlines the master runs with once the hook applied, as one stderr line: `overseer-check-config {json}`. */
export const CONFIG_LINE_PREFIX = 'overseer-check-config ';

/** What the check asks of the master, as JSON in OVERSEER_CHECK_MASTER. */
export interface MasterOverrides {
  /** The address every one of the app's addresses moves to (port 0: a free port each). */
  readonly addresses: string[];
  /** Exactly this drain deadline; or at most `maxTerminateTimeout`. */
  readonly terminateTimeout?: number;
  readonly maxTerminateTimeout?: number;
  readonly readyTimeout?: number;
  readonly maxReadyTimeout?: number;
  /** Poll this file for releases (it replaces the app's own fetcher). */
  readonly releaseFile?: string;
  readonly releaseInterval?: number;
}

function pick(exact: number | undefined, max: number | undefined, configured: number | undefined, fallback: number): number {
  if (exact !== undefined) return exact;
  const value = configured ?? fallback;
  return max === undefined ? value : Math.min(value, max);
}

/**
 * Every address the app binds moves, so state.listeners keeps its length and order: the first
 * to the check's (the one it loads), the others to free ports of their own — another loopback
 * address on Linux (a repeat is refused), a fresh unix socket path for a unix one; elsewhere a
 * further TCP address stays as the app gave it.
 */
function movedAddresses(config: Config, first: string): Array<string | number> {
  const given = config.addresses ?? (config.address === undefined ? [] : [config.address]);
  return [first, ...given.slice(1).map((address, index) => {
    if (String(address).startsWith('unix:')) return `unix:${path.join(os.tmpdir(), `overseer-check-${process.pid}-${index + 1}.sock`)}`;
    return process.platform === 'linux' ? `127.0.0.${index + 2}:0` : address;
  })];
}

export function overridden(config: Config, overrides: MasterOverrides): Config {
  const { address: _address, ...rest } = config;
  const interval = overrides.releaseInterval ?? 200;
  const onEvent = config.onEvent;
  return {
    ...rest,
    addresses: movedAddresses(config, overrides.addresses[0] ?? '127.0.0.1:0'),
    terminateTimeout: pick(overrides.terminateTimeout, overrides.maxTerminateTimeout, config.terminateTimeout, 30_000),
    readyTimeout: pick(overrides.readyTimeout, overrides.maxReadyTimeout, config.readyTimeout, 30_000),
    ...(overrides.releaseFile === undefined ? {} : {
      fetcher: new FileFetcher({ path: overrides.releaseFile, interval }),
      minFetchInterval: Math.min(config.minFetchInterval ?? 1000, interval),
    }),
    onEvent(event: OverseerEvent) {
      // Synchronous: the master may exit right after its last event.
      fs.writeSync(2, `${EVENT_LINE_PREFIX}${JSON.stringify(event)}\n`);
      onEvent?.(event);
    },
  };
}

const spec = process.env[CHECK_MASTER_ENV];
if (spec !== undefined && process.env[ROLE_ENV] === undefined) {
  delete process.env[CHECK_MASTER_ENV];
  const overrides = JSON.parse(spec) as MasterOverrides;
  const hook: ConfigHook = (config) => {
    const changed = overridden(config, overrides);
    fs.writeSync(2, `${CONFIG_LINE_PREFIX}${JSON.stringify({ terminateTimeout: changed.terminateTimeout, readyTimeout: changed.readyTimeout })}\n`);
    return changed;
  };
  (globalThis as Record<symbol, unknown>)[CHECK_HOOK] = hook;
}
