/**
 * The user's Config, its defaults, and normalizeConfig(): every check on it, done once,
 * synchronously, before anything binds or forks. The result is frozen and never the user's object.
 */
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import semverValid from 'semver/functions/valid.js';
import { OverseerError } from '../errors.js';
import { describeValue, invalidOption } from '../options.js';
import { parsePublicKey, type MinisignPublicKey } from '../upgrade/minisign.js';
import type { Fetcher } from '../upgrade/fetcher.js';
import type { OverseerEvent } from '../events.js';
import type { State } from './state.js';

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
  /** minisign public key (the base64 line or the whole .pub file); releases must be signed by it. */
  readonly publicKey?: string;
  /** Accept a release that reports a lower version than the running one. @default false */
  readonly allowDowngrade?: boolean;
}

export interface Config {
  /** The program; runs in the child. The child is ready when the returned promise resolves. */
  readonly program: (state: State) => unknown;
  /** One address to bind: ':3000', '127.0.0.1:3000', '[::1]:3000' or 'unix:/path/app.sock'. */
  readonly address?: string;
  /** Several addresses; state.listeners follows this order. Not together with `address`. */
  readonly addresses?: readonly string[];
  /** Where new releases come from (see overseer/fetchers). */
  readonly fetcher?: Fetcher;
  /** Signal that makes the master hand off to a fresh child. @default 'SIGUSR2' */
  readonly restartSignal?: NodeJS.Signals;
  /** Drain deadline of an outgoing child, in ms; it is killed with SIGKILL after it. @default 30000 */
  readonly terminateTimeout?: number;
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
}

export type ParsedAddress =
  | { readonly kind: 'tcp'; readonly host: string | undefined; readonly port: number; readonly text: string }
  | { readonly kind: 'unix'; readonly path: string; readonly text: string };

export interface ResolvedConfig {
  readonly program: (state: State) => unknown;
  readonly addresses: readonly ParsedAddress[];
  readonly fetcher: Fetcher | undefined;
  readonly restartSignal: NodeJS.Signals;
  readonly terminateTimeout: number;
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
  readonly verify: { readonly sha256: 'optional' | 'required'; readonly publicKey: MinisignPublicKey | undefined; readonly allowDowngrade: boolean };
  readonly onEvent: ((event: OverseerEvent) => void) | undefined;
  readonly bundlePath: string | undefined;
  readonly maxBundleSize: number;
  readonly checkTimeout: number;
}

export const DEFAULTS = Object.freeze({
  restartSignal: 'SIGUSR2' as NodeJS.Signals,
  terminateTimeout: 30_000,
  readyTimeout: 30_000,
  minFetchInterval: 1_000,
  maxBundleSize: 512 * 1024 * 1024,
  checkTimeout: 5_000,
  respawn: Object.freeze({ minDelay: 100, maxDelay: 10_000, maxCrashes: 5, window: 60_000 }),
});

/** Signals that cannot serve as the restart signal: uncatchable, or reserved by Node. */
const UNUSABLE_RESTART_SIGNALS = new Set(['SIGKILL', 'SIGSTOP', 'SIGUSR1', 'SIGINT', 'SIGTERM']);

const KNOWN_KEYS = new Set([
  'program', 'address', 'addresses', 'fetcher', 'restartSignal', 'terminateTimeout', 'readyTimeout',
  'minFetchInterval', 'preUpgrade', 'noRestart', 'noRestartAfterFetch', 'respawn', 'required', 'debug',
  'noWarn', 'version', 'verify', 'onEvent', 'bundlePath', 'maxBundleSize', 'checkTimeout',
]);

function invalid(option: string, expected: string, given: unknown): OverseerError {
  return invalidOption(`config.${option}`, expected, given);
}

function duration(config: Record<string, unknown>, key: string, fallback: number, prefix = ''): number {
  const value = config[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalid(`${prefix}${key}`, 'a duration in milliseconds (a finite number >= 0)', value);
  }
  return value;
}

function flag(config: Record<string, unknown>, key: string): boolean {
  const value = config[key];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw invalid(key, 'true or false', value);
  return value;
}

function optionalFunction<T>(config: Record<string, unknown>, key: string): T | undefined {
  const value = config[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw invalid(key, 'a function', value);
  return value as T;
}

/**
 * Parses ':3000', '127.0.0.1:3000', '[::1]:3000', '3000' and 'unix:/path'. Hosts must be IP
 * literals: the master binds before any resolver would run, and a name could map to several
 * addresses.
 */
export function parseAddress(text: string, option = 'address'): ParsedAddress {
  const fail = (why: string) =>
    new OverseerError('ERR_OVERSEER_BAD_ADDRESS', `config.${option} ${describeValue(text)} ${why}`, { subject: text });
  if (text.startsWith('unix:')) {
    const socketPath = text.slice('unix:'.length);
    if (socketPath === '') throw fail('names no socket path; write it as "unix:/run/app.sock"');
    return { kind: 'unix', path: path.resolve(socketPath), text };
  }
  let host: string | undefined;
  let portText: string;
  const bracketed = /^\[([^\]]+)\]:(\w*)$/.exec(text);
  if (bracketed) {
    host = bracketed[1];
    portText = bracketed[2] ?? '';
  } else if (/^\d+$/.test(text)) {
    portText = text;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1) throw fail('has no port; write it as ":3000", "127.0.0.1:3000", "[::1]:3000" or "unix:/path"');
    host = text.slice(0, colon) || undefined;
    portText = text.slice(colon + 1);
    if (host?.includes(':')) throw fail('is an IPv6 address without brackets; write it as "[::1]:3000"');
  }
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
    throw fail('has no valid port (0-65535); write it as ":3000", "127.0.0.1:3000" or "[::1]:3000"');
  }
  if (host !== undefined && net.isIP(host) === 0) {
    const hint = host === 'localhost' ? ' (use 127.0.0.1 or [::1])' : '';
    throw fail(`must use an IP literal, not a host name${hint}`);
  }
  return { kind: 'tcp', host, port: Number(portText), text };
}

function resolveRespawn(value: unknown): Required<RespawnOptions> | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return DEFAULTS.respawn;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('respawn', 'true, false or { minDelay, maxDelay, maxCrashes, window }', value);
  }
  const options = value as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!(key in DEFAULTS.respawn)) throw invalid(`respawn.${key}`, 'one of minDelay, maxDelay, maxCrashes, window (unknown option)', options[key]);
  }
  const maxCrashes = options.maxCrashes ?? DEFAULTS.respawn.maxCrashes;
  if (typeof maxCrashes !== 'number' || !Number.isInteger(maxCrashes) || maxCrashes < 1) {
    throw invalid('respawn.maxCrashes', 'a whole number >= 1', maxCrashes);
  }
  return Object.freeze({
    minDelay: duration(options, 'minDelay', DEFAULTS.respawn.minDelay, 'respawn.'),
    maxDelay: duration(options, 'maxDelay', DEFAULTS.respawn.maxDelay, 'respawn.'),
    maxCrashes,
    window: duration(options, 'window', DEFAULTS.respawn.window, 'respawn.'),
  });
}

function resolveVerify(value: unknown): ResolvedConfig['verify'] {
  if (value === undefined) return Object.freeze({ sha256: 'optional', publicKey: undefined, allowDowngrade: false });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('verify', '{ sha256, publicKey, allowDowngrade }', value);
  }
  const options = value as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!['sha256', 'publicKey', 'allowDowngrade'].includes(key)) {
      throw invalid(`verify.${key}`, 'one of sha256, publicKey, allowDowngrade (unknown option)', options[key]);
    }
  }
  const sha256 = options.sha256 ?? 'optional';
  if (sha256 !== 'optional' && sha256 !== 'required') throw invalid('verify.sha256', '"optional" or "required"', sha256);
  const publicKey = options.publicKey === undefined ? undefined : parsePublicKey(options.publicKey as string, 'config.verify.publicKey');
  const allowDowngrade = options.allowDowngrade ?? false;
  if (typeof allowDowngrade !== 'boolean') throw invalid('verify.allowDowngrade', 'true or false', allowDowngrade);
  return Object.freeze({ sha256, publicKey, allowDowngrade });
}

function resolveAddresses(config: Record<string, unknown>): ParsedAddress[] {
  const { address, addresses } = config;
  if (address !== undefined && addresses !== undefined) {
    throw new OverseerError(
      'ERR_OVERSEER_INVALID_CONFIG',
      'config.address and config.addresses were both given; use address for one socket or addresses for several',
      { subject: 'address' },
    );
  }
  if (address !== undefined) {
    if (typeof address !== 'string') throw invalid('address', 'a string such as ":3000" or "unix:/run/app.sock"', address);
    return [parseAddress(address)];
  }
  if (addresses === undefined) return [];
  if (!Array.isArray(addresses)) throw invalid('addresses', 'an array of address strings', addresses);
  const parsed = addresses.map((item: unknown, index) => {
    if (typeof item !== 'string') throw invalid(`addresses[${index}]`, 'a string such as ":3000"', item);
    return parseAddress(item, `addresses[${index}]`);
  });
  const seen = new Set<string>();
  for (const item of parsed) {
    if (seen.has(item.text)) throw invalid('addresses', 'a list without repeats', item.text);
    seen.add(item.text);
  }
  return parsed;
}

function resolveFetcher(value: unknown): Fetcher | undefined {
  if (value === undefined) return undefined;
  const candidate = value as Partial<Fetcher> | null;
  if (typeof candidate !== 'object' || candidate === null || typeof candidate.fetch !== 'function') {
    throw invalid('fetcher', 'a fetcher (an object with fetch(), such as new HttpFetcher({ url }))', value);
  }
  if (typeof candidate.interval !== 'number' || !Number.isFinite(candidate.interval) || candidate.interval < 0) {
    throw invalid('fetcher.interval', 'a duration in milliseconds', candidate.interval);
  }
  return candidate as Fetcher;
}

function resolveSignal(value: unknown): NodeJS.Signals {
  if (value === undefined) return DEFAULTS.restartSignal;
  if (typeof value !== 'string' || !(value in os.constants.signals) || UNUSABLE_RESTART_SIGNALS.has(value)) {
    throw invalid('restartSignal', 'a catchable signal name other than SIGINT, SIGTERM and SIGUSR1, such as "SIGUSR2" or "SIGHUP"', value);
  }
  return value as NodeJS.Signals;
}

/** Validates a Config and fills in defaults. Throws ERR_OVERSEER_INVALID_CONFIG naming the option. */
export function normalizeConfig(input: unknown): ResolvedConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `run() needs a config object such as { program, address }; got ${describeValue(input)}`);
  }
  const config = input as Record<string, unknown>;
  for (const key of Object.keys(config)) {
    if (!KNOWN_KEYS.has(key)) {
      throw new OverseerError(
        'ERR_OVERSEER_INVALID_CONFIG',
        `config.${key} is not an option (known: ${[...KNOWN_KEYS].join(', ')})`,
        { subject: key },
      );
    }
  }
  if (typeof config.program !== 'function') throw invalid('program', 'a function (state) => void | Promise<void>', config.program);
  const version = config.version;
  if (version !== undefined && (typeof version !== 'string' || semverValid(version) === null)) {
    throw invalid('version', 'a semver string such as "1.4.0"', version);
  }
  if (config.noRestart === true && config.respawn !== undefined && config.respawn !== false) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', 'config.respawn cannot be used with config.noRestart (a child that exits ends the master there); drop one of them', { subject: 'respawn' });
  }
  const bundlePath = config.bundlePath;
  if (bundlePath !== undefined && (typeof bundlePath !== 'string' || bundlePath === '')) {
    throw invalid('bundlePath', 'a file path', bundlePath);
  }
  const maxBundleSize = config.maxBundleSize ?? DEFAULTS.maxBundleSize;
  if (typeof maxBundleSize !== 'number' || !Number.isSafeInteger(maxBundleSize) || maxBundleSize <= 0) {
    throw invalid('maxBundleSize', 'a whole number of bytes > 0', maxBundleSize);
  }
  return Object.freeze({
    program: config.program as ResolvedConfig['program'],
    addresses: Object.freeze(resolveAddresses(config)),
    fetcher: resolveFetcher(config.fetcher),
    restartSignal: resolveSignal(config.restartSignal),
    terminateTimeout: duration(config, 'terminateTimeout', DEFAULTS.terminateTimeout),
    readyTimeout: duration(config, 'readyTimeout', DEFAULTS.readyTimeout),
    minFetchInterval: duration(config, 'minFetchInterval', DEFAULTS.minFetchInterval),
    preUpgrade: optionalFunction<ResolvedConfig['preUpgrade']>(config, 'preUpgrade'),
    noRestart: flag(config, 'noRestart'),
    noRestartAfterFetch: flag(config, 'noRestartAfterFetch'),
    respawn: resolveRespawn(config.respawn),
    required: flag(config, 'required'),
    debug: flag(config, 'debug'),
    noWarn: flag(config, 'noWarn'),
    version: version as string | undefined,
    verify: resolveVerify(config.verify),
    onEvent: optionalFunction<ResolvedConfig['onEvent']>(config, 'onEvent'),
    bundlePath: bundlePath === undefined ? undefined : path.resolve(bundlePath),
    maxBundleSize,
    checkTimeout: duration(config, 'checkTimeout', DEFAULTS.checkTimeout),
  });
}
