/**
 * The full check of selfUpdating()'s options, loaded only when the quick one in index.ts finds
 * something wrong: the shared checker names the option and suggests the closest known one.
 */
import { assertOptions, optionNames, required, rule, type OptionSpec } from '../options.js';
import { SELF_UPDATING_OPTIONS } from './index.js';

const SPEC: OptionSpec = Object.fromEntries(Object.entries(SELF_UPDATING_OPTIONS).map(([key, option]) => {
  const base = rule(option.expected, option.test);
  return [key, option.required ? required(base) : base];
}));

/** Throws ERR_OVERSEER_INVALID_CONFIG naming the bad option (`options.checkEvery`) and what it must be. */
export function assertSelfUpdatingOptions(options: unknown): void {
  assertOptions(optionNames('options'), options, SPEC);
}
