/**
 * Settings of `overseer run`: the JSON config file (-c) and the flags, merged (a flag wins over
 * the file) and checked before anything binds. An error names the file and the JSON path of the
 * bad key (`listeners[1].address`), or the flag, with what was expected and what was given.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { normalizeConfig, type RespawnOptions, type ResolvedConfig } from '../core/config.js';
import { OverseerError, describeError, isOverseerError } from '../errors.js';
import type { OverseerEvent } from '../events.js';
import type { Fetcher } from '../upgrade/fetcher.js';
import type { Readiness } from '../core/launch/exec.js';
import { assertOptions, describeValue, rule } from '../options.js';
import { EVENT_LINE_PREFIX } from '../protocol.js';

/** One bound socket: its LISTEN_FDNAMES entry and its address. */
export interface ListenerGroup {
  readonly name: string;
  readonly address: string;
}

export type FetchSource = 'http' | 'file' | 's3' | 'github';

export interface RunSettings {
  /** The config file, when -c gave one. */
  readonly configFile: string | undefined;
  readonly command: string;
  readonly args: readonly string[];
  /** Where the command runs: `cwd`, else the config file's directory, else overseer's own. */
  readonly cwd: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly listeners: readonly ListenerGroup[];
  readonly readiness: Readiness;
  readonly stopSignal: NodeJS.Signals;
  readonly reopenSignal: NodeJS.Signals;
  /** Run the echo-token check on releases. */
  readonly check: boolean;
  /** The control socket's path, when there is one. */
  readonly control: string | undefined;
  readonly pidFile: string | undefined;
  readonly fetchSource: FetchSource | undefined;
  /** The master's config: addresses, fetcher, timeouts, verification (children are the command, so `program` is a no-op). */
  readonly config: ResolvedConfig;
}

/** Keys of the config file, in the order the docs list them. */
const FILE_KEYS = [
  'listeners', 'command', 'cwd', 'env', 'ready', 'stopSignal', 'restartSignal', 'reopenSignal', 'terminateTimeout',
  'readyTimeout', 'respawn', 'bundle', 'check', 'fetch', 'verify', 'minFetchInterval', 'checkTimeout', 'maxBundleSize',
  'control', 'pidFile', 'debug',
] as const;

const FETCH_CLASSES: Readonly<Record<FetchSource, string>> = { http: 'HttpFetcher', file: 'FileFetcher', s3: 'S3Fetcher', github: 'GitHubFetcher' };

const LISTENER_NAME = /^[A-Za-z0-9_.-]{1,255}$/;
const ENV_NAME = /^[^=\0]+$/;
export const DEFAULT_REOPEN_SIGNAL: NodeJS.Signals = 'SIGUSR1';

export const RUN_OPTIONS = {
  config: { type: 'string', short: 'c' },
  listen: { type: 'string', multiple: true },
  ready: { type: 'string' },
  'ready-delay': { type: 'string' },
  'stop-signal': { type: 'string' },
  'restart-signal': { type: 'string' },
  'reopen-signal': { type: 'string' },
  'terminate-timeout': { type: 'string' },
  'ready-timeout': { type: 'string' },
  respawn: { type: 'boolean' },
  'no-respawn': { type: 'boolean' },
  bundle: { type: 'string' },
  cwd: { type: 'string' },
  env: { type: 'string', multiple: true },
  check: { type: 'boolean' },
  'no-check': { type: 'boolean' },
  fetch: { type: 'string' },
  'fetch-url': { type: 'string' },
  'fetch-file': { type: 'string' },
  'fetch-interval': { type: 'string' },
  'min-fetch-interval': { type: 'string' },
  sha256: { type: 'string' },
  'public-key': { type: 'string' },
  'allow-downgrade': { type: 'boolean' },
  'check-timeout': { type: 'string' },
  'max-bundle-size': { type: 'string' },
  control: { type: 'string' },
  'pid-file': { type: 'string' },
  debug: { type: 'boolean' },
  events: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface FetchSpec {
  readonly source: FetchSource;
  readonly options: Record<string, unknown>;
  /** How errors name this fetcher's options: `fetch.http` or `--fetch-url`. */
  readonly label: string;
}

/** What one source (the file or the flags) says; absent keys say nothing. */
interface Layer {
  listeners?: ListenerGroup[];
  command?: string[];
  cwd?: string;
  env?: Record<string, string>;
  readiness?: Readiness;
  stopSignal?: NodeJS.Signals;
  restartSignal?: unknown;
  reopenSignal?: NodeJS.Signals;
  terminateTimeout?: unknown;
  readyTimeout?: unknown;
  minFetchInterval?: unknown;
  checkTimeout?: unknown;
  maxBundleSize?: unknown;
  respawn?: boolean | RespawnOptions;
  bundle?: string;
  check?: boolean;
  fetch?: FetchSpec;
  fetchInterval?: number;
  verify?: { sha256?: unknown; publicKey?: string; allowDowngrade?: unknown };
  control?: string;
  pidFile?: string;
  debug?: boolean;
}

/** An error about the config file: `<file>: <json path> must be …; got …`. */
function fileError(file: string, jsonPath: string, expected: string, given: unknown): OverseerError {
  return new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${file}: ${jsonPath} must be ${expected}; got ${describeValue(given)}`, {
    subject: `${file}: ${jsonPath}`,
  });
}

function flagError(flag: string, message: string): OverseerError {
  return new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${flag} ${message}`, { subject: flag });
}

/** The same error with its `overseer: ` prefix replaced by `prefix` and its option names renamed. */
function renamed(error: unknown, prefix: string, rename: (name: string) => string): unknown {
  if (!isOverseerError(error)) return error;
  let first: string | undefined;
  const message = error.message
    .replace(/^overseer: /, '')
    .replace(/\bconfig\.([A-Za-z0-9]+(?:\[\d+\])?(?:\.[A-Za-z0-9]+)?)/g, (_, name: string) => {
      const renamedName = rename(name);
      first ??= renamedName;
      return renamedName;
    });
  return new OverseerError(error.code, `${prefix}${message}`, { cause: error, subject: `${prefix}${first ?? error.subject ?? ''}` });
}

function isSignal(value: unknown): value is NodeJS.Signals {
  return typeof value === 'string' && Object.hasOwn(os.constants.signals, value) && value !== 'SIGKILL' && value !== 'SIGSTOP';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function resolveUnix(address: string, dir: string): string {
  return address.startsWith('unix:') && address.length > 5 ? `unix:${path.resolve(dir, address.slice(5))}` : address;
}

function readPublicKey(value: string, base: string, label: string): string {
  if (!value.startsWith('@')) return value;
  const file = path.resolve(base, value.slice(1));
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${label}: cannot read the public key file ${file}: ${describeError(error)}`, { subject: label, cause: error });
  }
}

/** Reads and parses a config file; a JSON error names the line and column. */
export function readConfigFile(file: string): Record<string, unknown> {
  const extension = path.extname(file).toLowerCase();
  if (extension === '.toml' || extension === '.yaml' || extension === '.yml') {
    const format = extension === '.toml' ? 'TOML' : 'YAML';
    throw new OverseerError(
      'ERR_OVERSEER_INVALID_CONFIG',
      `${file}: ${format} is not supported: Node.js has no ${format} parser built in and overseer adds no dependency for one; ` +
        'write the same keys as JSON (overseer.config.json, see docs/command.md)',
      { subject: file },
    );
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `cannot read the config file ${file}: ${describeError(error)}`, { subject: file, cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const position = /at position (\d+)/.exec(describeError(error))?.[1];
    let where = '';
    if (position !== undefined && !/\(line \d+/.test(describeError(error))) {
      const before = text.slice(0, Number(position)).split('\n');
      where = ` (line ${before.length} column ${(before.at(-1)?.length ?? 0) + 1})`;
    }
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${file} is not valid JSON: ${describeError(error)}${where}; the config file is plain JSON, without comments`, {
      subject: file,
      cause: error,
    });
  }
  if (!isPlainObject(parsed)) throw fileError(file, 'the top level', 'an object such as { "command": [...], "listeners": [...] }', parsed);
  return parsed;
}

function fileLayer(file: string, data: Record<string, unknown>): Layer {
  const dir = path.dirname(file);
  const bad = (jsonPath: string, expected: string, given: unknown) => fileError(file, jsonPath, expected, given);
  const any = rule('anything', () => true);
  try {
    assertOptions('the top level', data, Object.fromEntries(FILE_KEYS.map((key) => [key, any])));
  } catch (error) {
    throw renamed(error, `${file}: `, (name) => name);
  }
  const layer: Layer = {};
  const { listeners, command, cwd, env, ready, stopSignal, reopenSignal, bundle, check, fetch, verify, control, pidFile, debug } = data;

  if (listeners !== undefined) {
    if (!Array.isArray(listeners)) throw bad('listeners', 'an array of { "name", "address" }', listeners);
    layer.listeners = listeners.map((item: unknown, index) => {
      const at = `listeners[${index}]`;
      if (typeof item === 'string') return { name: `listen${index}`, address: resolveUnix(item, dir) };
      if (!isPlainObject(item)) throw bad(at, '{ "name": "web", "address": ":8080" } or an address string', item);
      try {
        assertOptions(at, item, { name: any, address: any });
      } catch (error) {
        throw renamed(error, `${file}: `, (name) => name);
      }
      if (typeof item.address !== 'string') throw bad(`${at}.address`, 'an address such as ":8080", "127.0.0.1:8080", "[::1]:8080" or "unix:/run/app.sock"', item.address);
      if (item.name !== undefined && (typeof item.name !== 'string' || !LISTENER_NAME.test(item.name))) {
        throw bad(`${at}.name`, 'a name of letters, digits, "_", "." and "-" (it goes into LISTEN_FDNAMES)', item.name);
      }
      return { name: item.name ?? `listen${index}`, address: resolveUnix(item.address, dir) };
    });
  }
  if (command !== undefined) {
    if (!Array.isArray(command) || command.length === 0 || !command.every((item) => typeof item === 'string') || command[0] === '') {
      throw bad('command', 'a non-empty array of strings, the program and its arguments, such as ["node", "server.mjs"]', command);
    }
    layer.command = command as string[];
  }
  if (cwd !== undefined) {
    if (typeof cwd !== 'string' || cwd === '') throw bad('cwd', 'a directory path', cwd);
    layer.cwd = path.resolve(dir, cwd);
  }
  if (env !== undefined) {
    if (!isPlainObject(env)) throw bad('env', 'an object of variable names to string values', env);
    for (const [name, value] of Object.entries(env)) {
      if (!ENV_NAME.test(name)) throw bad('env', 'an object of variable names (without "=") to string values', name);
      if (typeof value !== 'string') throw bad(`env.${name}`, 'a string (environment values are strings; quote numbers)', value);
    }
    layer.env = env as Record<string, string>;
  }
  if (ready !== undefined) {
    const expected = '"notify" (the command writes READY=1 to $OVERSEER_READY_FD) or { "delay": ms }';
    if (ready === 'notify') layer.readiness = { kind: 'notify' };
    else if (isPlainObject(ready) && Object.keys(ready).length === 1 && Number.isSafeInteger(ready.delay) && (ready.delay as number) >= 0) {
      layer.readiness = { kind: 'delay', ms: ready.delay as number };
    } else if (isPlainObject(ready) && Object.keys(ready).length === 1 && ready.delay !== undefined) {
      throw bad('ready.delay', 'a whole number of milliseconds', ready.delay);
    } else {
      throw bad('ready', expected, ready);
    }
  }
  if (stopSignal !== undefined) {
    if (!isSignal(stopSignal)) throw bad('stopSignal', 'a signal name such as "SIGTERM"', stopSignal);
    layer.stopSignal = stopSignal;
  }
  if (reopenSignal !== undefined) {
    if (!isSignal(reopenSignal)) throw bad('reopenSignal', 'a signal name such as "SIGUSR1"', reopenSignal);
    layer.reopenSignal = reopenSignal;
  }
  for (const key of ['restartSignal', 'terminateTimeout', 'readyTimeout', 'minFetchInterval', 'checkTimeout', 'maxBundleSize'] as const) {
    if (data[key] !== undefined) layer[key] = data[key];
  }
  if (data.respawn !== undefined) layer.respawn = data.respawn as boolean | RespawnOptions;
  if (bundle !== undefined) {
    if (typeof bundle !== 'string' || bundle === '') throw bad('bundle', 'a file path', bundle);
    layer.bundle = path.resolve(dir, bundle);
  }
  if (check !== undefined) {
    if (typeof check !== 'boolean') throw bad('check', 'true or false', check);
    layer.check = check;
  }
  if (fetch !== undefined) {
    const sources = Object.keys(FETCH_CLASSES);
    const keys = isPlainObject(fetch) ? Object.keys(fetch) : [];
    const source = keys[0] as FetchSource | undefined;
    if (keys.length !== 1 || source === undefined || !sources.includes(source)) {
      throw bad('fetch', `an object with one of ${sources.map((name) => `"${name}"`).join(', ')}, such as { "http": { "url": "https://…" } }`, fetch);
    }
    const options = (fetch as Record<string, unknown>)[source];
    if (!isPlainObject(options)) throw bad(`fetch.${source}`, `the options of ${FETCH_CLASSES[source]} (an object)`, options);
    const resolved = { ...options };
    if (source === 'file' && typeof resolved.path === 'string' && resolved.path !== '') resolved.path = path.resolve(dir, resolved.path);
    layer.fetch = { source, options: resolved, label: `${file}: fetch.${source}` };
  }
  if (verify !== undefined) {
    if (!isPlainObject(verify)) throw bad('verify', '{ "sha256", "publicKey", "allowDowngrade" }', verify);
    const publicKey = verify.publicKey;
    if (publicKey !== undefined && typeof publicKey !== 'string') throw bad('verify.publicKey', 'a minisign public key, or "@path/to/key.pub"', publicKey);
    layer.verify = {
      ...verify,
      ...(publicKey === undefined ? {} : { publicKey: readPublicKey(publicKey, dir, `${file}: verify.publicKey`) }),
    };
  }
  if (control !== undefined) {
    if (typeof control !== 'string' || control === '') throw bad('control', 'the path of the control socket', control);
    layer.control = path.resolve(dir, control);
  }
  if (pidFile !== undefined) {
    if (typeof pidFile !== 'string' || pidFile === '') throw bad('pidFile', 'a file path', pidFile);
    layer.pidFile = path.resolve(dir, pidFile);
  }
  if (debug !== undefined) {
    if (typeof debug !== 'boolean') throw bad('debug', 'true or false', debug);
    layer.debug = debug;
  }
  return layer;
}

function wholeNumber(flag: string, value: string | undefined, unit = 'milliseconds'): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number)) throw flagError(`--${flag}`, `takes a whole number of ${unit}; got ${JSON.stringify(value)}`);
  return number;
}

function flagSignal(flag: string, value: string | undefined): NodeJS.Signals | undefined {
  if (value === undefined) return undefined;
  const name = (value.toUpperCase().startsWith('SIG') ? value : `SIG${value}`).toUpperCase();
  if (!isSignal(name)) throw flagError(`--${flag}`, `takes a signal name such as SIGTERM; got ${JSON.stringify(value)}`);
  return name;
}

type RunValues = ReturnType<typeof parseRunFlags>['values'];

function parseRunFlags(args: string[]) {
  return parseArgs({ args, options: RUN_OPTIONS, allowPositionals: false, strict: true });
}

function flagLayer(values: RunValues, command: string[]): Layer {
  const layer: Layer = {};
  if (values.listen !== undefined) {
    layer.listeners = values.listen.map((item, index) => {
      const match = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(item);
      return match ? { name: match[1] ?? '', address: match[2] ?? '' } : { name: `listen${index}`, address: item };
    });
  }
  if (command.length > 0) layer.command = command;
  if (values.cwd !== undefined) layer.cwd = path.resolve(values.cwd);
  if (values.env !== undefined) {
    layer.env = {};
    for (const item of values.env) {
      const split = item.indexOf('=');
      if (split <= 0) throw flagError('--env', `takes NAME=VALUE; got ${JSON.stringify(item)}`);
      layer.env[item.slice(0, split)] = item.slice(split + 1);
    }
  }
  const readyDelay = wholeNumber('ready-delay', values['ready-delay']);
  if (values.ready !== undefined && values.ready !== 'notify') {
    throw flagError('--ready', `takes "notify" (or use --ready-delay MS); got ${JSON.stringify(values.ready)}`);
  }
  if (values.ready !== undefined && readyDelay !== undefined) throw flagError('--ready notify', 'and --ready-delay contradict each other; give one');
  if (values.ready !== undefined) layer.readiness = { kind: 'notify' };
  if (readyDelay !== undefined) layer.readiness = { kind: 'delay', ms: readyDelay };
  const stopSignal = flagSignal('stop-signal', values['stop-signal']);
  if (stopSignal) layer.stopSignal = stopSignal;
  const reopenSignal = flagSignal('reopen-signal', values['reopen-signal']);
  if (reopenSignal) layer.reopenSignal = reopenSignal;
  const restartSignal = flagSignal('restart-signal', values['restart-signal']);
  if (restartSignal) layer.restartSignal = restartSignal;
  const numbers = [
    ['terminateTimeout', 'terminate-timeout'], ['readyTimeout', 'ready-timeout'], ['minFetchInterval', 'min-fetch-interval'],
    ['checkTimeout', 'check-timeout'], ['maxBundleSize', 'max-bundle-size'],
  ] as const;
  for (const [key, flag] of numbers) {
    const value = wholeNumber(flag, values[flag], key === 'maxBundleSize' ? 'bytes' : 'milliseconds');
    if (value !== undefined) layer[key] = value;
  }
  if (values.respawn && values['no-respawn']) throw flagError('--respawn', 'and --no-respawn contradict each other; give one');
  if (values.respawn) layer.respawn = true;
  if (values['no-respawn']) layer.respawn = false;
  if (values.bundle !== undefined) layer.bundle = path.resolve(values.bundle);
  if (values.check && values['no-check']) throw flagError('--check', 'and --no-check contradict each other; give one');
  if (values.check) layer.check = true;
  if (values['no-check']) layer.check = false;
  if (values['fetch-url'] !== undefined && values['fetch-file'] !== undefined) {
    throw flagError('--fetch-url', 'and --fetch-file name two release sources; give one');
  }
  if (values.fetch !== undefined) {
    if (values['fetch-url'] !== undefined || values['fetch-file'] !== undefined) {
      throw flagError('--fetch', 'and --fetch-url/--fetch-file name two release sources; give one');
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(values.fetch);
    } catch (error) {
      throw flagError('--fetch', `takes the JSON of the config file's "fetch", such as '{"s3":{"bucket":"releases","key":"app.mjs"}}' (${describeError(error)})`);
    }
    // The same checks as the file's "fetch" key; relative paths resolve against the working directory.
    const spec = fileLayer('--fetch', { fetch: parsed }).fetch;
    if (spec) layer.fetch = spec;
  }
  if (values['fetch-url'] !== undefined) layer.fetch = { source: 'http', options: { url: values['fetch-url'] }, label: '--fetch-url' };
  if (values['fetch-file'] !== undefined) layer.fetch = { source: 'file', options: { path: path.resolve(values['fetch-file']) }, label: '--fetch-file' };
  const fetchInterval = wholeNumber('fetch-interval', values['fetch-interval']);
  if (fetchInterval !== undefined) layer.fetchInterval = fetchInterval;
  const verify: NonNullable<Layer['verify']> = {};
  if (values.sha256 !== undefined) verify.sha256 = values.sha256;
  if (values['public-key'] !== undefined) verify.publicKey = readPublicKey(values['public-key'], process.cwd(), '--public-key');
  if (values['allow-downgrade']) verify.allowDowngrade = true;
  if (Object.keys(verify).length > 0) layer.verify = verify;
  if (values.control !== undefined) layer.control = path.resolve(values.control);
  if (values['pid-file'] !== undefined) layer.pidFile = path.resolve(values['pid-file']);
  if (values.debug) layer.debug = true;
  return layer;
}

const FLAG_NAMES: Readonly<Record<string, string>> = {
  'verify.sha256': '--sha256',
  'verify.publicKey': '--public-key',
  'verify.allowDowngrade': '--allow-downgrade',
  bundlePath: '--bundle',
};

function flagName(name: string): string {
  if (name.startsWith('addresses')) return '--listen';
  return FLAG_NAMES[name] ?? `--${name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

function fileName(name: string): string {
  return name.replace(/^addresses\[(\d+)\]$/, 'listeners[$1].address').replace(/^addresses$/, 'listeners').replace(/^bundlePath$/, 'bundle');
}

/** The part of a layer run()'s own checks cover, as a Config for normalizeConfig. */
function masterPart(layer: Layer): Record<string, unknown> {
  const config: Record<string, unknown> = { program: () => {} };
  if (layer.listeners) config.addresses = layer.listeners.map((listener) => listener.address);
  for (const key of ['restartSignal', 'terminateTimeout', 'readyTimeout', 'minFetchInterval', 'checkTimeout', 'maxBundleSize', 'respawn', 'debug'] as const) {
    if (layer[key] !== undefined) config[key] = layer[key];
  }
  if (layer.verify) config.verify = layer.verify;
  if (layer.bundle !== undefined) config.bundlePath = layer.bundle;
  return config;
}

/** Resolves a command name through PATH, as the shell would, for hashing its file. */
function resolveCommand(command: string, cwd: string): string | undefined {
  if (command.includes('/')) return path.resolve(cwd, command);
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

async function createFetcher(spec: FetchSpec, interval: number | undefined): Promise<Fetcher> {
  const options = interval === undefined ? spec.options : { ...spec.options, interval };
  try {
    switch (spec.source) {
      case 'http':
        return new (await import('../../fetchers/http.js')).HttpFetcher(options as never);
      case 'file':
        return new (await import('../../fetchers/file.js')).FileFetcher(options as never);
      case 's3':
        return new (await import('../../fetchers/s3.js')).S3Fetcher(options as never);
      case 'github':
        return new (await import('../../fetchers/github.js')).GitHubFetcher(options as never);
    }
  } catch (error) {
    if (!isOverseerError(error)) throw error;
    // The fetcher names its options `HttpFetcher.url`; here they are `fetch.http.url` or a flag.
    const className = FETCH_CLASSES[spec.source];
    let message = error.message.replace(/^overseer: /, '');
    if (spec.label === '--fetch-url' || spec.label === '--fetch-file') {
      message = message.replace(new RegExp(`^${className}\\.(\\w+)`), (_, key: string) => (key === 'interval' ? '--fetch-interval' : spec.label));
    }
    message = message.replace(new RegExp(`^${className}`), spec.label);
    throw new OverseerError(error.code, message, { cause: error, subject: spec.label });
  }
}

/** `overseer run` argv (before the `--`) and the command after it → settings, or 'help'. */
export async function loadRunSettings(argv: readonly string[]): Promise<RunSettings | 'help'> {
  const split = argv.indexOf('--');
  const command = split === -1 ? [] : argv.slice(split + 1);
  let parsed;
  try {
    parsed = parseRunFlags(split === -1 ? [...argv] : argv.slice(0, split));
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', describeError(error), { subject: '--' });
  }
  const { values } = parsed;
  if (values.help) return 'help';

  const configFile = values.config === undefined ? undefined : path.resolve(values.config);
  const file = configFile === undefined ? {} : fileLayer(configFile, readConfigFile(configFile));
  const flags = flagLayer(values, command);
  // Each source is checked alone first, so an error names the key or flag it came from.
  if (configFile !== undefined) {
    try {
      normalizeConfig(masterPart(file));
    } catch (error) {
      throw renamed(error, `${configFile}: `, fileName);
    }
  }
  try {
    normalizeConfig(masterPart(flags));
  } catch (error) {
    throw renamed(error, '', flagName);
  }

  const [program, ...args] = flags.command ?? file.command ?? [];
  if (program === undefined) {
    throw new OverseerError(
      'ERR_OVERSEER_INVALID_CONFIG',
      configFile === undefined
        ? 'no command: put it after --, as in `overseer run --listen :3000 -- node server.js`'
        : `no command: ${configFile} has no "command" (such as ["node", "server.mjs"]) and none follows --`,
      { subject: '--' },
    );
  }
  const cwd = flags.cwd ?? file.cwd ?? (configFile === undefined ? undefined : path.dirname(configFile));
  if (cwd !== undefined && !fs.statSync(cwd, { throwIfNoEntry: false })?.isDirectory()) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `the working directory ${cwd} (${flags.cwd === undefined ? 'cwd' : '--cwd'}) is not a directory`, { subject: cwd });
  }
  const bundlePath = flags.bundle ?? file.bundle ?? resolveCommand(program, cwd ?? process.cwd());
  if (bundlePath === undefined) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `cannot find ${JSON.stringify(program)} on PATH; give its path, or the bundle (--bundle PATH)`, { subject: program });
  }
  try {
    fs.accessSync(bundlePath, fs.constants.R_OK);
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `cannot read the bundle ${bundlePath}: ${describeError(error)}; --bundle (or "bundle" in the config file) names the file whose sha256 identifies the build`, {
      subject: bundlePath,
      cause: error,
    });
  }

  const fetchSpec = flags.fetch ?? file.fetch;
  const fetchInterval = flags.fetchInterval;
  if (fetchInterval !== undefined && fetchSpec === undefined) throw flagError('--fetch-interval', 'needs a release source: --fetch-url, --fetch-file, or "fetch" in the config file');
  const fetcher = fetchSpec === undefined ? undefined : await createFetcher(fetchSpec, fetchInterval);
  const verify = { ...file.verify, ...flags.verify };
  const merged: Layer = { ...file, ...flags, verify };
  const listeners = merged.listeners ?? [];
  const events = values.events === true;
  const base = masterPart(merged);
  let config: ResolvedConfig;
  try {
    config = normalizeConfig({
      ...base,
      bundlePath,
      ...(fetcher === undefined ? {} : { fetcher }),
      ...(events ? { onEvent: (event: OverseerEvent) => process.stderr.write(`${EVENT_LINE_PREFIX}${JSON.stringify(event)}\n`) } : {}),
    });
  } catch (error) {
    throw renamed(error, '', (name) => name);
  }
  return {
    configFile,
    command: program,
    args,
    cwd,
    env: { ...file.env, ...flags.env },
    listeners,
    readiness: merged.readiness ?? { kind: 'notify' },
    stopSignal: merged.stopSignal ?? 'SIGTERM',
    reopenSignal: merged.reopenSignal ?? DEFAULT_REOPEN_SIGNAL,
    check: merged.check ?? true,
    control: merged.control,
    pidFile: merged.pidFile,
    fetchSource: fetchSpec?.source,
    config,
  };
}

/** The control socket named by `--control PATH` or by the `control` key of a config file. */
export function controlPathOf(configFile: string): string {
  const data = readConfigFile(configFile);
  const control = data.control;
  if (control === undefined) {
    throw new OverseerError(
      'ERR_OVERSEER_INVALID_CONFIG',
      `${configFile} sets no control socket; add "control": "/run/app/overseer.sock" to it (and restart the master), or give --control PATH`,
      { subject: configFile },
    );
  }
  if (typeof control !== 'string' || control === '') throw fileError(configFile, 'control', 'the path of the control socket', control);
  return path.resolve(path.dirname(configFile), control);
}
