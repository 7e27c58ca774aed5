/**
 * The three undici modules a poll uses, loaded by their paths inside the package (loaded by
 * undici-lean.ts at the first poll). The build replaces this module with static imports of the
 * same three paths and bundles them into a chunk of dist (scripts/bundle.mjs): one file instead
 * of undici's 36 CommonJS modules, whose resolution alone woke V8's optimizing compiler in the
 * master (docs/benchmarks.md §9). Run from the sources (tsx), they load from node_modules.
 */
import { createRequire } from 'node:module';

export const UNDICI_PARTS = {
  agent: 'undici/lib/dispatcher/env-http-proxy-agent.js',
  api: 'undici/lib/api/index.js',
  dispatcher: 'undici/lib/dispatcher/dispatcher.js',
} as const;

/** module.exports of each part; throws when undici is laid out otherwise. */
export function undiciParts(): { agent: unknown; api: unknown; dispatcher: unknown } {
  const require = createRequire(import.meta.url);
  return { agent: require(UNDICI_PARTS.agent), api: require(UNDICI_PARTS.api), dispatcher: require(UNDICI_PARTS.dispatcher) };
}
