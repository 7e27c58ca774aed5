/**
 * overseer/self-update: a command-line tool that keeps itself current with no master. The tool
 * runs in this process at once; at most once per `checkEvery` it starts a detached background
 * process (the tool itself, run again with OVERSEER_ROLE=self-update) that polls the fetcher
 * and installs a release through the same pipeline as run() (download, sha256, signature,
 * echo-token check with version, no downgrade, swap under the lock). The next run is the new
 * version. This module loads only fs, path, os and small overseer files: everything the
 * updater needs is imported by the background process, or by selfUpdate().
 */
import fs from 'node:fs';
import path from 'node:path';
import { childExecArgv, isSea } from '../core/launch/sea.js';
import type { OverseerError } from '../errors.js';
import { CHECK_LINE_PREFIX, PROTOCOL, ROLE_CHECK_PREFIX, ROLE_ENV } from '../protocol.js';
import type { Fetcher } from '../upgrade/fetcher.js';
import type { OptionTest, SelfUpdateOptions, SelfUpdateResult, SelfUpdateSettings, SelfUpdatingOptions, Tool } from './options.js';
import { defaultStateFile, readState, writeState, type SelfUpdateState } from './state-file.js';

export type { Fetcher } from '../upgrade/fetcher.js';
export type { OverseerEvent } from '../events.js';
export type { SelfUpdateState } from './state-file.js';
export type { SelfUpdateOptions, SelfUpdateResult, SelfUpdatingOptions, Tool } from './options.js';

/** OVERSEER_ROLE of the background updater: the tool run again to check and install, then exit. */
export const ROLE_SELF_UPDATE = 'self-update';

export const SELF_UPDATE_DEFAULTS = Object.freeze({
  /** One check a day. */
  checkEvery: 24 * 60 * 60 * 1000,
});

const isDuration = (value: unknown) => typeof value === 'number' && Number.isFinite(value) && value >= 0;
const isPath = (value: unknown) => typeof value === 'string' && value !== '';

/**
 * Every option of selfUpdating(): what it must be, and the test. Tested here on every run
 * without loading anything; only a bad option loads the shared checker (options.ts) for its message.
 */
export const SELF_UPDATING_OPTIONS: Readonly<Record<keyof SelfUpdatingOptions, OptionTest>> = {
  version: { expected: 'a version string such as "1.4.0"', test: isPath, required: true },
  program: { expected: 'a function (tool) => void | Promise<void>', test: (value) => typeof value === 'function', required: true },
  fetcher: {
    expected: 'a fetcher, or a function that returns one (or a promise of one)',
    test: (value) => typeof value === 'function' || (typeof value === 'object' && value !== null && typeof (value as Partial<Fetcher>).fetch === 'function'),
  },
  checkEvery: { expected: 'a duration in milliseconds (a finite number >= 0)', test: isDuration },
  // Checked in full (the key parsed) by the updater, which loads the verification code.
  verify: { expected: '{ sha256, publicKey, allowDowngrade }', test: (value) => typeof value === 'object' && value !== null && !Array.isArray(value) },
  bundlePath: { expected: 'a file path', test: isPath },
  stateFile: { expected: 'a file path', test: isPath },
  name: { expected: 'a non-empty string', test: isPath },
  notify: { expected: 'false or a function (message) => void', test: (value) => value === false || typeof value === 'function' },
  checkTimeout: { expected: 'a duration in milliseconds (a finite number >= 0)', test: isDuration },
  maxBundleSize: { expected: 'a whole number of bytes > 0', test: (value) => Number.isSafeInteger(value) && (value as number) > 0 },
};

function optionsLookValid(options: unknown): boolean {
  if (typeof options !== 'object' || options === null) return false;
  const tests: Readonly<Record<string, { test: (value: unknown) => boolean; required?: true } | undefined>> = SELF_UPDATING_OPTIONS;
  for (const [key, value] of Object.entries(options)) {
    const option = Object.hasOwn(tests, key) ? tests[key] : undefined;
    if (option === undefined || (value !== undefined && !option.test(value))) return false;
  }
  return Object.entries(tests).every(([key, option]) => !option?.required || (options as Record<string, unknown>)[key] !== undefined);
}

async function fail(code: OverseerError['code'], message: string): Promise<never> {
  const { OverseerError } = await import('../errors.js');
  throw new OverseerError(code, message);
}

async function exit(code: number): Promise<never> {
  const { exitProcess } = await import('../core/exit.js');
  return exitProcess(code);
}

let current: SelfUpdateSettings | undefined;
let started = false;
/** Set while this run's background updater is about to start: selfUpdate() called at once cancels it. */
let cancelPendingCheck: (() => void) | undefined;

/**
 * Runs a self-updating command-line tool (docs/cli.md). Resolves with what the program returns.
 * In the background updater and under the echo-token check it does their job instead and the
 * process exits; the program does not run there. Throws ERR_OVERSEER_INVALID_CONFIG on bad options.
 */
export async function selfUpdating(options: SelfUpdatingOptions): Promise<unknown> {
  if (!optionsLookValid(options)) {
    const { assertSelfUpdatingOptions } = await import('./options.js');
    assertSelfUpdatingOptions(options, SELF_UPDATING_OPTIONS);
  }
  if (started) return fail('ERR_OVERSEER_ALREADY_RUNNING', 'selfUpdating() was already called in this process; call it once, from the entry script');
  started = true;
  const role = process.env[ROLE_ENV];
  // Never passed on to what the tool starts.
  delete process.env[ROLE_ENV];
  if (role?.startsWith(ROLE_CHECK_PREFIX)) return answerCheck(role.slice(ROLE_CHECK_PREFIX.length), options.version);
  const settings = resolveSettings(options);
  current = settings;
  if (role === ROLE_SELF_UPDATE) {
    const { checkInBackground } = await import('./updater.js');
    await checkInBackground(settings);
    // The background updater is overseer's own process: it ends here, whatever the fetcher left open.
    return exit(0);
  }
  const notify = options.notify === false ? undefined : options.notify ?? ((message: string) => process.stderr.write(`${message}\n`));
  const { updated, checking } = startRun(settings, notify);
  const tool: Tool = { version: settings.version, bundlePath: settings.bundlePath, updated, checking, selfUpdate: (updateOptions) => runSelfUpdate(settings, updateOptions) };
  return options.program(tool);
}

/**
 * Checks and installs a release now, in this process, with progress events: the `self-update`
 * command of a tool. Call it from the program of selfUpdating() (or use `tool.selfUpdate`).
 * Waits for a background check under way; rejects on network or disk failures.
 */
export function selfUpdate(options: SelfUpdateOptions = {}): Promise<SelfUpdateResult> {
  if (!current) return fail('ERR_OVERSEER_INVALID_CONFIG', 'selfUpdate() was called before selfUpdating(); call it from the program that selfUpdating() runs');
  return runSelfUpdate(current, options);
}

async function runSelfUpdate(settings: SelfUpdateSettings, options: SelfUpdateOptions = {}): Promise<SelfUpdateResult> {
  // This check replaces the one the run claimed: a background updater beside it could take the
  // lock first and install, and this one would then find nothing newer.
  cancelPendingCheck?.();
  if (!settings.fetcher) return { updated: false, reason: 'no-fetcher', message: 'selfUpdating() was given no fetcher' };
  const { updateNow } = await import('./updater.js');
  return updateNow(settings, options);
}

function answerCheck(token: string, version: string): Promise<never> {
  const answer = JSON.stringify({ token, protocol: PROTOCOL, version });
  // Synchronous: the process exits right after, and stdout may be a pipe.
  fs.writeSync(1, `\n${CHECK_LINE_PREFIX}${answer}\n`);
  return exit(0);
}

function resolveSettings(options: SelfUpdatingOptions): SelfUpdateSettings {
  const given = options.bundlePath ?? (isSea() ? process.execPath : process.argv[1]);
  let bundlePath = given === undefined ? '' : path.resolve(given);
  try {
    bundlePath = fs.realpathSync(bundlePath);
  } catch {
    // Missing (code from -e): the tool runs, and the updater says why it cannot install.
  }
  const { fetcher } = options;
  return {
    version: options.version,
    bundlePath,
    stateFile: options.stateFile === undefined ? defaultStateFile(bundlePath) : path.resolve(options.stateFile),
    name: options.name ?? path.basename(bundlePath),
    fetcher: fetcher === undefined ? undefined : typeof fetcher === 'function' ? async () => fetcher() : async () => fetcher,
    verify: options.verify,
    checkEvery: options.checkEvery ?? SELF_UPDATE_DEFAULTS.checkEvery,
    checkTimeout: options.checkTimeout,
    maxBundleSize: options.maxBundleSize,
  };
}

/**
 * The foreground's whole cost: read the state file; tell once what the last check left to tell;
 * when a check is due, note the time and start the background updater without waiting for it,
 * once the program has had its first turn (a `self-update` command calls selfUpdate() there,
 * which checks in the foreground instead).
 */
function startRun(settings: SelfUpdateSettings, notify: ((message: string) => void) | undefined): { updated: Tool['updated']; checking: boolean } {
  const state = readState(settings.stateFile);
  let next: SelfUpdateState = state;
  let updated: Tool['updated'];
  if (state.updated && !state.updated.told) {
    updated = { from: state.updated.from, to: state.updated.to };
    notify?.(`${settings.name} was updated from ${state.updated.from} to ${state.updated.to ?? 'a new build'}`);
    next = { ...next, updated: { ...state.updated, told: true } };
  }
  if (state.problem && !state.problem.told) {
    notify?.(state.problem.message);
    next = { ...next, problem: { ...state.problem, told: true } };
  }
  const now = Date.now();
  const checking = settings.fetcher !== undefined && settings.bundlePath !== '' && !(now - (state.lastCheck ?? 0) < settings.checkEvery);
  // Claimed before the spawn, so the invocations that follow do not start one each.
  if (checking) next = { ...next, lastCheck: now };
  if (next !== state) {
    try {
      writeState(settings.stateFile, next);
    } catch {
      // A cache directory we cannot write: tell nothing twice is lost, the tool still runs.
    }
  }
  if (checking) scheduleBackgroundCheck();
  return { updated, checking };
}

/** Starts the background updater after the program's first turn, or as the process exits if that comes first. */
function scheduleBackgroundCheck(): void {
  const cancel = () => {
    clearImmediate(timer);
    process.off('exit', start);
    cancelPendingCheck = undefined;
  };
  const start = () => {
    cancel();
    startBackgroundCheck();
  };
  const timer = setImmediate(start);
  // A program that calls process.exit() in its first turn still gets its check.
  process.once('exit', start);
  cancelPendingCheck = cancel;
}

/** The tool run again as the updater, detached (its own session), stdio ignored, not waited for. */
function startBackgroundCheck(): void {
  const script = process.argv[1];
  const args = isSea() ? [] : script === undefined ? undefined : [...childExecArgv(), script];
  if (args === undefined) return;
  // child_process is loaded only when a check is due.
  const { spawn } = process.getBuiltinModule('node:child_process');
  try {
    const child = spawn(process.execPath, args, {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, [ROLE_ENV]: ROLE_SELF_UPDATE },
    });
    child.on('error', () => {});
    child.unref();
  } catch {
    // Out of processes: the next interval tries again.
  }
}
