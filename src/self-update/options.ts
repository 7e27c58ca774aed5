/**
 * The full check of selfUpdating()'s options, loaded only when the quick one in index.ts finds
 * something wrong: the shared checker names the option and suggests the closest known one.
 */
import { assertOptions, optionNames, required, rule, type OptionSpec } from '../options.js';

export interface OptionTest {
  readonly expected: string;
  readonly test: (value: unknown) => boolean;
  readonly required?: true;
}

/** Throws ERR_OVERSEER_INVALID_CONFIG naming the bad option (`options.checkEvery`) and what it must be. */
export function assertSelfUpdatingOptions(options: unknown, tests: Readonly<Record<string, OptionTest>>): void {
  const spec: OptionSpec = Object.fromEntries(Object.entries(tests).map(([key, option]) => {
    const base = rule(option.expected, option.test);
    return [key, option.required ? required(base) : base];
  }));
  assertOptions(optionNames('options'), options, spec);
}
