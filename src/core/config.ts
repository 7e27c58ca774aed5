/**
 * The user's Config, its defaults, its option spec (CONFIG_SPEC), and normalizeConfig(): every
 * check on it, done once with the shared spec mechanism, synchronously, before anything binds or forks. The result is frozen and never the user's object.
 * Addresses are parsed by address.ts (re-exported here).
 */
import os from 'node:os';
import path from 'node:path';
import { OverseerError } from '../errors.js';
import { isValidSemver } from './semver-valid.js';
import { parseAddress, type ParsedAddress } from './address.js';
import {
  assertOptions, describeValue, invalidOption, isPlainObject, nestedNames, optionNames, required, rule, rules, withInner,
  type OptionNames, type OptionSpec,
} from '../options.js';
import { parsePublicKey, type MinisignPublicKey } from '../upgrade/minisign.js';
import type { Fetcher } from '../upgrade/fetcher.js';
import type { OverseerEvent } from '../events.js';
import type { State } from './state.js';

export { LISTENER_NAME, parseAddress, splitListen, type ParsedAddress } from './address.js';

export interface RespawnOptions {
  /** Delay before the first respawn, in ms; it doubles after each crash. @default 100 */
  readonly minDelay?: number;
  /** Cap on the respawn delay, in ms. @default 10000 */
  readonly maxDelay?: number;
  /** Crashes allowed within `window` before the master gives up and exits. @default 5 */
  readonly maxCrashes?: number;
  /** Length of the crash-loop window, in ms. @default 60000 */
  readonly window?: number;
}

export interface VerifyOptions {
  /** 'required': a release whose source gives no sha256 is refused. @default 'optional' */
  readonly sha256?: 'optional' | 'required';
  /** minisign public key (the base64 line or the whole .pub file), or several (key rotation); releases must be signed by one of them. */
  readonly publicKey?: string | readonly string[];
  /** Accept a release that reports a lower version than the running one. @default false */
  readonly allowDowngrade?: boolean;
}

/** The probation of a new build after an upgrade's handoff (docs/probation.md). */
export interface ProbationOptions {
  /** How long the new build must hold, in ms, from the end of its handoff. @default 30000 */
  readonly duration?: number;
  /** Share of 5xx answers (0 to 1) above which a run() child fails; counted with no app code. @default 0.1 */
  readonly maxErrorRatio?: number;
  /** Answers needed before maxErrorRatio is judged. @default 20 */
  readonly minRequests?: number;
  /** An HTTP GET through the listening socket, for programs the master cannot see into. */
  readonly probe?: ProbeOptions;
}

export interface ProbeOptions {
  /** The path to GET, such as "/health"; a 2xx or 3xx answer passes. */
  readonly path: string;
  /** Time between probes, in ms. @default 1000 */
  readonly interval?: number;
  /** Consecutive failed probes that fail the probation. @default 3 */
  readonly failures?: number;
  /** Time a probe has to answer, in ms. @default 2000 */
  readonly timeout?: number;
  /** Which listener (its index in the addresses) to probe. @default 0 */
  readonly listener?: number;
}

export type ResolvedProbation = Readonly<Required<Omit<ProbationOptions, 'probe'>>> & { readonly probe: Readonly<Required<ProbeOptions>> | undefined };

export interface Config {
  /** The program; runs in the child. The child is ready when the returned promise resolves. */
  readonly program: (state: State) => unknown;
  /** One address to bind: ':3000', '127.0.0.1:3000', '[::1]:3000', 'unix:/path/app.sock', or a port number (3000), as server.listen() takes it. */
  readonly address?: string | number;
  /** Several addresses; state.listeners follows this order. Not together with `address`. */
  readonly addresses?: ReadonlyArray<string | number>;
  /** Where new releases come from (see overseer/fetchers). */
  readonly fetcher?: Fetcher;
  /** Signal that makes the master hand off to a fresh child. @default 'SIGUSR2' */
  readonly restartSignal?: NodeJS.Signals;
  /** Drain deadline of an outgoing child, in ms; it is killed with SIGKILL after it. @default 30000 */
  readonly terminateTimeout?: number;
  /**
   * On a handoff, the old child tells its keep-alive connections to close spread over this
   * window, in ms, so they do not all reconnect at once to a cold new child; 0 closes them at
   * once. 'auto': 500 ms, or 4 ms per open connection beyond 125. Never more than half the
   * terminateTimeout. @default 'auto'
   */
  readonly drainSpread?: number | 'auto';
  /** A new child must be ready within this, in ms, or it is killed and the old one keeps serving. @default 30000 */
  readonly readyTimeout?: number;
  /** Floor between two polls of the fetcher, in ms. @default 1000 */
  readonly minFetchInterval?: number;
  /** Called with the staged release's path after verification; throw to cancel the upgrade. */
  readonly preUpgrade?: (tempPath: string) => unknown;
  /** Never restart: a child that exits ends the master; upgrades land for the next run. @default false */
  readonly noRestart?: boolean;
  /** Install upgrades without restarting; the next manual restart runs them. @default false */
  readonly noRestartAfterFetch?: boolean;
  /** Fork a new child when the child exits on its own, with backoff and a crash-loop limit. @default false */
  readonly respawn?: boolean | RespawnOptions;
  /** Throw ERR_OVERSEER_UNSUPPORTED where the master cannot run, instead of running in-process. @default false */
  readonly required?: boolean;
  /** Print debug lines to stderr (NODE_DEBUG=overseer does too). @default false */
  readonly debug?: boolean;
  /** Silence overseer's warnings. @default false */
  readonly noWarn?: boolean;
  /** This build's semver, reported in the echo-token handshake and on state.version. */
  readonly version?: string;
  /** Release verification. */
  readonly verify?: VerifyOptions;
  /** Lifecycle events, in the master. */
  readonly onEvent?: (event: OverseerEvent) => void;
  /** The file upgrades replace and children run. @default process.argv[1] */
  readonly bundlePath?: string;
  /** Largest release accepted, in bytes after gunzip. @default 536870912 (512 MiB) */
  readonly maxBundleSize?: number;
  /** Time a staged release has to answer the echo-token check, in ms. @default 5000 */
  readonly checkTimeout?: number;
  /** Folder releases: old release folders kept besides the live one and `.previous`. @default 3 */
  readonly keepReleases?: number;
  /** Aborting it stops the master gracefully, as SIGTERM does (read in the master only). */
  readonly signal?: AbortSignal;
  /** After an upgrade's handoff, the new build must hold for a while or the previous one comes back. `false`: off. @default true */
  readonly probation?: boolean | ProbationOptions;
}

export interface ResolvedConfig {
  readonly program: (state: State) => unknown;
  readonly addresses: readonly ParsedAddress[];
  readonly fetcher: Fetcher | undefined;
  readonly restartSignal: NodeJS.Signals;
  readonly terminateTimeout: number;
  readonly drainSpread: number | 'auto';
  readonly readyTimeout: number;
  readonly minFetchInterval: number;
  readonly preUpgrade: ((tempPath: string) => unknown) | undefined;
  readonly noRestart: boolean;
  readonly noRestartAfterFetch: boolean;
  readonly respawn: Required<RespawnOptions> | undefined;
  readonly required: boolean;
  readonly debug: boolean;
  readonly noWarn: boolean;
  readonly version: string | undefined;
  readonly verify: {
    readonly sha256: 'optional' | 'required';
    /** The first key of verify.publicKey. */
    readonly publicKey: MinisignPublicKey | undefined;
    /** Every key of verify.publicKey (a signature by any of them verifies); absent means [publicKey]. */
    readonly publicKeys?: readonly MinisignPublicKey[];
    readonly allowDowngrade: boolean;
  };
  readonly onEvent: ((event: OverseerEvent) => void) | undefined;
  readonly bundlePath: string | undefined;
  readonly maxBundleSize: number;
  readonly checkTimeout: number;
  readonly keepReleases: number;
  readonly signal: AbortSignal | undefined;
  readonly probation: ResolvedProbation | undefined;
}

export const DEFAULTS = Object.freeze({
  restartSignal: 'SIGUSR2' as NodeJS.Signals,
  terminateTimeout: 30_000,
  drainSpread: 'auto' as number | 'auto',
  readyTimeout: 30_000,
  minFetchInterval: 1_000,
  maxBundleSize: 512 * 1024 * 1024,
  checkTimeout: 5_000,
  keepReleases: 3,
  respawn: Object.freeze({ minDelay: 100, maxDelay: 10_000, maxCrashes: 5, window: 60_000 }),
  probation: Object.freeze({ duration: 30_000, maxErrorRatio: 0.1, minRequests: 20 }),
  probe: Object.freeze({ interval: 1_000, failures: 3, timeout: 2_000, listener: 0 }),
});

/** Signals that cannot serve as the restart signal: uncatchable, or reserved by Node. */
const UNUSABLE_RESTART_SIGNALS = new Set(['SIGKILL', 'SIGSTOP', 'SIGUSR1', 'SIGINT', 'SIGTERM']);

const isDuration = (value: unknown) => typeof value === 'number' && Number.isFinite(value) && value >= 0;
const duration = rule('a duration in milliseconds (a finite number >= 0)', isDuration);
const flag = rules.boolean;

const RESPAWN_SPEC: OptionSpec = {
  minDelay: duration,
  maxDelay: duration,
  maxCrashes: rule('a whole number >= 1', (value) => Number.isInteger(value) && (value as number) >= 1),
  window: duration,
};

const VERIFY_SPEC: OptionSpec = {
  sha256: rule('"optional" or "required"', (value) => value === 'optional' || value === 'required'),
  // Parsed (and its errors named) once, by normalizeConfig.
  publicKey: rule(
    'a minisign public key (the base64 line or the whole .pub file), or a non-empty array of them',
    (value) => typeof value === 'string' || (Array.isArray(value) && value.length > 0 && value.every((key) => typeof key === 'string')),
  ),
  allowDowngrade: flag,
};

const PROBE_SPEC: OptionSpec = {
  path: required(rule('an absolute URL path such as "/health"', (value) => typeof value === 'string' && /^\/[\x21-\x7e]*$/.test(value))),
  interval: rule('a duration in milliseconds > 0', (value) => isDuration(value) && (value as number) > 0),
  failures: rule('a whole number >= 1', (value) => Number.isSafeInteger(value) && (value as number) >= 1),
  timeout: rule('a duration in milliseconds > 0', (value) => isDuration(value) && (value as number) > 0),
  listener: rule('a whole number >= 0 (an index into the addresses)', (value) => Number.isSafeInteger(value) && (value as number) >= 0),
};

const PROBATION_SPEC: OptionSpec = {
  duration: rule('a duration in milliseconds > 0', (value) => isDuration(value) && (value as number) > 0),
  maxErrorRatio: rule('a ratio from 0 to 1, such as 0.1', (value) => typeof value === 'number' && value >= 0 && value <= 1),
  minRequests: rule('a whole number >= 1', (value) => Number.isSafeInteger(value) && (value as number) >= 1),
  probe: withInner(rule('{ path, interval, failures, timeout, listener }', isPlainObject), (value, names, key) => {
    assertOptions(nestedNames(names, key), value, PROBE_SPEC);
  }),
};

function checkAddresses(value: unknown, names: OptionNames, key: string): void {
  const seen = new Set<string>();
  (value as unknown[]).forEach((item, index) => {
    const name = names.of(`${key}[${index}]`);
    if (typeof item !== 'string' && typeof item !== 'number') throw invalidOption(name, 'a string such as ":3000" or a port number', item);
    const text = typeof item === 'number' ? `:${item}` : item;
    if (seen.has(text) || (typeof item === 'number' && seen.has(String(item)))) throw invalidOption(names.of(key), 'a list without repeats', item);
    seen.add(text);
  });
}

/** Every option of run(), checked by assertOptions; docs/config.md documents each key (a test checks). */
export const CONFIG_SPEC: OptionSpec = {
  program: required(rule('a function (state) => void | Promise<void>', (value) => typeof value === 'function')),
  // Addresses are parsed (and their errors named) once, by normalizeConfig.
  address: rule('a string such as ":3000" or "unix:/run/app.sock", or a port number such as 3000', (value) => typeof value === 'string' || typeof value === 'number'),
  addresses: withInner(rule('an array of addresses (strings such as ":3000", or port numbers)', Array.isArray), checkAddresses),
  fetcher: withInner(
    rule('a fetcher (an object with fetch(), such as new HttpFetcher({ url }))', (value) => isPlainObjectLike(value) && typeof (value as Partial<Fetcher>).fetch === 'function'),
    (value, names, key) => {
      const { interval } = value as Partial<Fetcher>;
      if (!isDuration(interval)) throw invalidOption(names.of(`${key}.interval`), 'a duration in milliseconds', interval);
    },
  ),
  restartSignal: rule(
    'a catchable signal name other than SIGINT, SIGTERM and SIGUSR1, such as "SIGUSR2" or "SIGHUP"',
    (value) => typeof value === 'string' && Object.hasOwn(os.constants.signals, value) && !UNUSABLE_RESTART_SIGNALS.has(value),
  ),
  terminateTimeout: duration,
  drainSpread: rule('"auto" or a duration in milliseconds (a finite number >= 0)', (value) => value === 'auto' || isDuration(value)),
  readyTimeout: duration,
  minFetchInterval: duration,
  preUpgrade: rules.function,
  noRestart: flag,
  noRestartAfterFetch: flag,
  respawn: withInner(rule('true, false or { minDelay, maxDelay, maxCrashes, window }', (value) => typeof value === 'boolean' || isPlainObject(value)), (value, names, key) => {
    if (isPlainObject(value)) assertOptions(nestedNames(names, key), value, RESPAWN_SPEC);
  }),
  required: flag,
  debug: flag,
  noWarn: flag,
  version: rule('a semver string such as "1.4.0"', (value) => typeof value === 'string' && isValidSemver(value)),
  verify: withInner(rule('{ sha256, publicKey, allowDowngrade }', isPlainObject), (value, names, key) => {
    assertOptions(nestedNames(names, key), value, VERIFY_SPEC);
  }),
  onEvent: rules.function,
  bundlePath: rule('a file path', (value) => typeof value === 'string' && value !== ''),
  maxBundleSize: rule('a whole number of bytes > 0', (value) => Number.isSafeInteger(value) && (value as number) > 0),
  checkTimeout: duration,
  keepReleases: rule('a whole number of release folders, 0 or more', (value) => Number.isSafeInteger(value) && (value as number) >= 0),
  signal: rule('an AbortSignal (such as new AbortController().signal)', (value) => value instanceof AbortSignal),
  probation: withInner(rule('true, false or { duration, maxErrorRatio, minRequests, probe }', (value) => typeof value === 'boolean' || isPlainObject(value)), (value, names, key) => {
    if (isPlainObject(value)) assertOptions(nestedNames(names, key), value, PROBATION_SPEC);
  }),
};

/** A fetcher may be a class instance, so any non-null object (not only a plain one). */
function isPlainObjectLike(value: unknown): boolean {
  return typeof value === 'object' && value !== null;
}

const RUN_NAMES = optionNames('config');

/**
 * Validates a Config in one pass and fills in defaults. Throws ERR_OVERSEER_INVALID_CONFIG (or
 * ERR_OVERSEER_BAD_ADDRESS) naming the option through `names`: `config.x` for run(), the flag or
 * the file's key for `overseer run`.
 */
export function normalizeConfig(input: unknown, names: OptionNames = RUN_NAMES): ResolvedConfig {
  if (!isPlainObject(input)) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `run() needs a config object such as { program, address }; got ${describeValue(input)}`);
  }
  assertOptions(names, input, CONFIG_SPEC);
  const config = input as unknown as Config;
  if (config.address !== undefined && config.addresses !== undefined) {
    throw new OverseerError(
      'ERR_OVERSEER_INVALID_CONFIG',
      `${names.of('address')} and ${names.of('addresses')} were both given; use address for one socket or addresses for several`,
      { subject: names.of('address') },
    );
  }
  if (config.noRestart === true && config.respawn !== undefined && config.respawn !== false) {
    throw new OverseerError(
      'ERR_OVERSEER_INVALID_CONFIG',
      `${names.of('respawn')} cannot be used with ${names.of('noRestart')} (a child that exits ends the master there); drop one of them`,
      { subject: names.of('respawn') },
    );
  }
  const addresses =
    config.address !== undefined ? [parseAddress(config.address, names.of('address'))]
    : (config.addresses ?? []).map((address, index) => parseAddress(address, names.of(`addresses[${index}]`)));
  const respawn = config.respawn === true ? {} : config.respawn === false ? undefined : config.respawn;
  const verify = config.verify ?? {};
  const keyTexts = verify.publicKey === undefined ? [] : typeof verify.publicKey === 'string' ? [verify.publicKey] : verify.publicKey;
  const publicKeys = keyTexts.map((text, index) => parsePublicKey(text, names.of(typeof verify.publicKey === 'string' ? 'verify.publicKey' : `verify.publicKey[${index}]`)));
  return Object.freeze({
    program: config.program,
    addresses: Object.freeze(addresses),
    fetcher: config.fetcher,
    restartSignal: config.restartSignal ?? DEFAULTS.restartSignal,
    terminateTimeout: config.terminateTimeout ?? DEFAULTS.terminateTimeout,
    drainSpread: config.drainSpread ?? DEFAULTS.drainSpread,
    readyTimeout: config.readyTimeout ?? DEFAULTS.readyTimeout,
    minFetchInterval: config.minFetchInterval ?? DEFAULTS.minFetchInterval,
    preUpgrade: config.preUpgrade,
    noRestart: config.noRestart ?? false,
    noRestartAfterFetch: config.noRestartAfterFetch ?? false,
    respawn: respawn === undefined ? undefined : Object.freeze({ ...DEFAULTS.respawn, ...definedOnly(respawn) }),
    required: config.required ?? false,
    debug: config.debug ?? false,
    noWarn: config.noWarn ?? false,
    version: config.version,
    verify: Object.freeze({
      sha256: verify.sha256 ?? 'optional',
      publicKey: publicKeys[0],
      publicKeys: Object.freeze(publicKeys),
      allowDowngrade: verify.allowDowngrade ?? false,
    }),
    onEvent: config.onEvent,
    bundlePath: config.bundlePath === undefined ? undefined : path.resolve(config.bundlePath),
    maxBundleSize: config.maxBundleSize ?? DEFAULTS.maxBundleSize,
    checkTimeout: config.checkTimeout ?? DEFAULTS.checkTimeout,
    keepReleases: config.keepReleases ?? DEFAULTS.keepReleases,
    signal: config.signal,
    probation: resolveProbation(config.probation),
  });
}

/** Probation is on unless `false`; an object overrides the defaults it names. */
export function resolveProbation(given: boolean | ProbationOptions | undefined): ResolvedProbation | undefined {
  if (given === false) return undefined;
  const options = given === true || given === undefined ? {} : given;
  const probe = options.probe === undefined ? undefined : Object.freeze({ ...DEFAULTS.probe, ...definedOnly(options.probe) });
  return Object.freeze({ ...DEFAULTS.probation, ...definedOnly({ ...options, probe: undefined }), probe }) as ResolvedProbation;
}

/** An options object without its keys set to undefined (undefined counts as absent). */
function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
