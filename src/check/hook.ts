/**
 * How `overseer check` and `overseer/testing` put a run() app on their own port: their preload
 * (check/preload.ts) leaves a function under this global symbol in the master, and run() passes
 * the app's config through it. A symbol, not an environment variable, so nothing outside the
 * process can move a production master; Symbol.for, so a bundled copy of overseer finds it too.
 */
import type { Config } from '../core/config.js';

export const CHECK_HOOK = Symbol.for('overseer.check.config');

export type ConfigHook = (config: Config) => Config;

/** The config as the check's preload changes it, or as given when no check runs this process. */
export function applyCheckHook(config: Config): Config {
  const hook = (globalThis as Record<symbol, unknown>)[CHECK_HOOK];
  return typeof hook === 'function' ? (hook as ConfigHook)(config) : config;
}
