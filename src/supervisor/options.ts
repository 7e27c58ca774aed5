/**
 * Options of one supervised process: their types, defaults, the retry delay they imply, and the
 * one check that turns what Supervisor.add() was given into frozen ResolvedProcessOptions
 * (ERR_OVERSEER_INVALID_CONFIG naming the process and the option otherwise).
 */
import os from 'node:os';
import { assertOptions, invalidOption, rule, rules, type OptionSpec } from '../options.js';

export interface ProcessOptions {
  /** Working directory of the process. @default the supervisor's process.cwd() */
  readonly cwd?: string;
  /** Variables set over the supervisor's own environment; a key set to undefined is removed. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** How many times a failed process is started again before it becomes fatal; Infinity for always. @default 0 */
  readonly retries?: number;
  /** Wait in ms before the first retry. @default 1000 */
  readonly retryDelay?: number;
  /** Each further retry waits this many times longer than the one before. @default 2 */
  readonly backoff?: number;
  /** The longest wait in ms between retries. @default 30000 */
  readonly maxRetryDelay?: number;
  /** The signal stop() sends to the process group. @default 'SIGTERM' */
  readonly stopSignal?: NodeJS.Signals;
  /** In ms: how long stop() waits after stopSignal before it sends SIGKILL. @default 10000 */
  readonly stopTimeout?: number;
  /** Run the command through a shell (true: /bin/sh, or a shell's path). @default false */
  readonly shell?: boolean | string;
}

export interface ResolvedProcessOptions {
  readonly cwd: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly retries: number;
  readonly retryDelay: number;
  readonly backoff: number;
  readonly maxRetryDelay: number;
  readonly stopSignal: NodeJS.Signals;
  readonly stopTimeout: number;
  readonly shell: boolean | string;
}

export const PROCESS_DEFAULTS = Object.freeze({
  retries: 0,
  retryDelay: 1000,
  backoff: 2,
  maxRetryDelay: 30_000,
  stopSignal: 'SIGTERM',
  stopTimeout: 10_000,
  shell: false,
} as const satisfies Omit<ResolvedProcessOptions, 'cwd' | 'env'>);

/** Longest timer Node can arm; larger delays fire after 1 ms. */
const MAX_DELAY = 2 ** 31 - 1;

const isDelay = (value: unknown) => typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_DELAY;

export function isSignalName(value: unknown): value is NodeJS.Signals {
  return typeof value === 'string' && value.startsWith('SIG') && Object.hasOwn(os.constants.signals, value);
}

const signalRule = rule('a signal name such as "SIGTERM" or "SIGINT"', isSignalName);

const SPEC: OptionSpec = {
  cwd: rules.nonEmptyString,
  env: rule(
    'an object of variable names to string values (or undefined to remove one)',
    (value) =>
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value) &&
      Object.values(value).every((each) => typeof each === 'string' || each === undefined),
  ),
  retries: rule(
    'a retry count (an integer from 0, or Infinity)',
    (value) => value === Infinity || (Number.isInteger(value) && (value as number) >= 0),
  ),
  retryDelay: rule(`a delay in milliseconds (a number from 0 to ${MAX_DELAY})`, isDelay),
  backoff: rule('a backoff factor (a number from 1, e.g. 2 doubles each delay)', (value) => typeof value === 'number' && Number.isFinite(value) && value >= 1),
  maxRetryDelay: rule(`a delay in milliseconds (a number from 0 to ${MAX_DELAY})`, isDelay),
  stopSignal: signalRule,
  stopTimeout: rules.timeout,
  shell: rule('true, false or the path of a shell', (value) => typeof value === 'boolean' || (typeof value === 'string' && value !== '')),
};

/** Checks add()'s arguments; `subject` names the call in messages, e.g. `supervisor.add("web")`. */
export function normalizeProcessOptions(subject: string, options: unknown): ResolvedProcessOptions {
  const given = (options === undefined ? {} : options) as ProcessOptions;
  assertOptions(subject, given, SPEC);
  const resolved: ResolvedProcessOptions = {
    cwd: given.cwd,
    env: Object.freeze({ ...given.env }),
    retries: given.retries ?? PROCESS_DEFAULTS.retries,
    retryDelay: given.retryDelay ?? PROCESS_DEFAULTS.retryDelay,
    backoff: given.backoff ?? PROCESS_DEFAULTS.backoff,
    maxRetryDelay: given.maxRetryDelay ?? Math.max(PROCESS_DEFAULTS.maxRetryDelay, given.retryDelay ?? 0),
    stopSignal: given.stopSignal ?? PROCESS_DEFAULTS.stopSignal,
    stopTimeout: given.stopTimeout ?? PROCESS_DEFAULTS.stopTimeout,
    shell: given.shell ?? PROCESS_DEFAULTS.shell,
  };
  if (resolved.maxRetryDelay < resolved.retryDelay) {
    throw invalidOption(`${subject}.maxRetryDelay`, `at least retryDelay (${resolved.retryDelay})`, resolved.maxRetryDelay);
  }
  return Object.freeze(resolved);
}

/** The wait before retry number `retry` (1 for the first): retryDelay × backoff^(retry−1), capped. */
export function retryDelayFor(options: ResolvedProcessOptions, retry: number): number {
  return Math.min(options.retryDelay * options.backoff ** (retry - 1), options.maxRetryDelay);
}

export function checkCommand(subject: string, command: unknown, args: unknown): asserts args is readonly string[] | undefined {
  if (typeof command !== 'string' || command === '') throw invalidOption(`${subject} command`, 'a non-empty string such as "node"', command);
  if (args !== undefined && (!Array.isArray(args) || !args.every((arg) => typeof arg === 'string'))) {
    throw invalidOption(`${subject} args`, 'an array of strings', args);
  }
}
