/**
 * The errors of node:util parseArgs as overseer words them: an unknown flag is named with the nearest known
 * one ("did you mean"), the same mechanism options.ts uses for option keys.
 */
import type { ParseArgsConfig } from 'node:util';
import { describeError } from '../errors.js';
import { closest } from '../options.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** `unknown option --listn (did you mean --listen?)`, or Node's own message for other mistakes. */
export function describeFlagError(error: unknown, options: Options): string {
  const code = (error as { code?: unknown } | null)?.code;
  const flag = /option '(-[^']*)'/i.exec(describeError(error))?.[1];
  if (code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || flag === undefined) return describeError(error);
  const [name = flag] = flag.split('=');
  const known = Object.entries(options).flatMap(([long, option]) => [`--${long}`, ...(option.short === undefined ? [] : [`-${option.short}`])]);
  const hint = name.startsWith('--') ? closest(name, known.filter((each) => each.startsWith('--'))) : undefined;
  return `unknown option ${name}${hint === undefined ? '' : ` (did you mean ${hint}?)`}`;
}
