/**
 * The flags of `overseer run`, parsed into a Layer. A flag that takes a number or a signal is
 * parsed here (its error names the flag); the master's options are checked once, merged with
 * the config file's, by normalizeConfig with the flag names this file gives them.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { splitListen } from '../core/config.js';
import { OverseerError, describeError } from '../errors.js';
import { assertOptions, optionNames } from '../options.js';
import { describeFlagError } from './parse-flags.js';
import { FILE_SPEC, fetchSpecOf } from './run-config-file.js';
import { isSignal, readPublicKey, type Layer } from './run-layer.js';

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
  preload: { type: 'boolean' },
  'no-preload': { type: 'boolean' },
  fetch: { type: 'string' },
  'fetch-url': { type: 'string' },
  'fetch-file': { type: 'string' },
  'fetch-interval': { type: 'string' },
  'min-fetch-interval': { type: 'string' },
  sha256: { type: 'string' },
  'public-key': { type: 'string' },
  'allow-downgrade': { type: 'boolean' },
  'allow-insecure-http': { type: 'boolean' },
  'check-timeout': { type: 'string' },
  'max-bundle-size': { type: 'string' },
  'keep-releases': { type: 'string' },
  control: { type: 'string' },
  'pid-file': { type: 'string' },
  probation: { type: 'string' },
  'no-probation': { type: 'boolean' },
  'probe-path': { type: 'string' },
  'probe-interval': { type: 'string' },
  'probe-failures': { type: 'string' },
  debug: { type: 'boolean' },
  events: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type RunValues = ReturnType<typeof parseRunFlags>['values'];

export function flagError(flag: string, message: string): OverseerError {
  return new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${flag} ${message}`, { subject: flag });
}

/** Parses the flags before `--`; an unknown or malformed flag is an error naming it. */
export function parseRunFlags(args: string[]) {
  try {
    return parseArgs({ args, options: RUN_OPTIONS, allowPositionals: false, strict: true });
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', describeFlagError(error, RUN_OPTIONS), { subject: '--' });
  }
}

const FLAG_NAMES: Readonly<Record<string, string>> = {
  'verify.sha256': '--sha256',
  'verify.publicKey': '--public-key',
  'verify.allowDowngrade': '--allow-downgrade',
  bundlePath: '--bundle',
  probation: '--probation',
  'probation.duration': '--probation',
  'probation.probe.path': '--probe-path',
  'probation.probe.interval': '--probe-interval',
  'probation.probe.failures': '--probe-failures',
};

/** The flag that sets a Config option. */
export function flagName(name: string): string {
  if (name.startsWith('addresses')) return '--listen';
  return FLAG_NAMES[name] ?? `--${name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
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

function contradict(a: string, b: string): OverseerError {
  return flagError(a, `and ${b} contradict each other; give one`);
}

/** The release source the flags name, if any. */
function fetchLayer(values: RunValues): Layer['fetch'] {
  if (values['fetch-url'] !== undefined && values['fetch-file'] !== undefined) {
    throw flagError('--fetch-url', 'and --fetch-file name two release sources; give one');
  }
  // The fetcher's own option names map to the flag that set them.
  const named = (flag: string) => optionNames(flag, (option) => (option === 'interval' ? '--fetch-interval' : flag));
  if (values['fetch-url'] !== undefined) return { source: 'http', options: { url: values['fetch-url'] }, names: named('--fetch-url') };
  if (values['fetch-file'] !== undefined) return { source: 'file', options: { path: path.resolve(values['fetch-file']) }, names: named('--fetch-file') };
  if (values.fetch === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(values.fetch);
  } catch (error) {
    throw flagError('--fetch', `takes the JSON of the config file's "fetch", such as '{"s3":{"bucket":"releases","key":"app.mjs"}}' (${describeError(error)})`);
  }
  // The same rule as the file's "fetch" key; relative paths resolve against the working directory.
  const names = optionNames('--fetch', (option) => `--fetch: ${option}`);
  assertOptions(names, { fetch: parsed }, { fetch: FILE_SPEC.fetch! });
  return fetchSpecOf({ fetch: parsed }, process.cwd(), names);
}

/** What the flags (and the command after `--`) say. */
export function flagLayer(values: RunValues, command: string[]): Layer {
  const config: Record<string, unknown> = {};
  const layer: Layer = { config, name: flagName };
  if (values.listen !== undefined) layer.listeners = values.listen.map((item, index) => splitListen(item, `listen${index}`));
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
  if (values.ready !== undefined && readyDelay !== undefined) throw contradict('--ready notify', '--ready-delay');
  if (values.ready !== undefined) layer.readiness = { kind: 'notify' };
  if (readyDelay !== undefined) layer.readiness = { kind: 'delay', ms: readyDelay };
  const stopSignal = flagSignal('stop-signal', values['stop-signal']);
  if (stopSignal) layer.stopSignal = stopSignal;
  const reopenSignal = flagSignal('reopen-signal', values['reopen-signal']);
  if (reopenSignal) layer.reopenSignal = reopenSignal;
  const restartSignal = flagSignal('restart-signal', values['restart-signal']);
  if (restartSignal) config.restartSignal = restartSignal;
  const numbers = [
    ['terminateTimeout', 'terminate-timeout'], ['readyTimeout', 'ready-timeout'], ['minFetchInterval', 'min-fetch-interval'],
    ['checkTimeout', 'check-timeout'], ['maxBundleSize', 'max-bundle-size'], ['keepReleases', 'keep-releases'],
  ] as const;
  for (const [key, flag] of numbers) {
    const value = wholeNumber(flag, values[flag], key === 'maxBundleSize' ? 'bytes' : key === 'keepReleases' ? 'release folders' : 'milliseconds');
    if (value !== undefined) config[key] = value;
  }
  if (values.respawn && values['no-respawn']) throw contradict('--respawn', '--no-respawn');
  if (values.respawn) config.respawn = true;
  if (values['no-respawn']) config.respawn = false;
  if (values.bundle !== undefined) layer.bundle = path.resolve(values.bundle);
  if (values.check && values['no-check']) throw contradict('--check', '--no-check');
  if (values.check) layer.check = true;
  if (values['no-check']) layer.check = false;
  if (values.preload && values['no-preload']) throw contradict('--preload', '--no-preload');
  if (values.preload) layer.preload = true;
  if (values['no-preload']) layer.preload = false;
  if (values.fetch !== undefined && (values['fetch-url'] !== undefined || values['fetch-file'] !== undefined)) {
    throw flagError('--fetch', 'and --fetch-url/--fetch-file name two release sources; give one');
  }
  const fetch = fetchLayer(values);
  if (fetch) layer.fetch = fetch;
  if (values['allow-insecure-http']) layer.allowInsecureHttp = true;
  const fetchInterval = wholeNumber('fetch-interval', values['fetch-interval']);
  if (fetchInterval !== undefined) layer.fetchInterval = fetchInterval;
  const verify: Record<string, unknown> = {};
  if (values.sha256 !== undefined) verify.sha256 = values.sha256;
  if (values['public-key'] !== undefined) verify.publicKey = readPublicKey(values['public-key'], process.cwd(), '--public-key');
  if (values['allow-downgrade']) verify.allowDowngrade = true;
  if (Object.keys(verify).length > 0) config.verify = verify;
  if (values.control !== undefined) layer.control = path.resolve(values.control);
  if (values['pid-file'] !== undefined) layer.pidFile = path.resolve(values['pid-file']);
  if (values.debug) config.debug = true;
  const probation = probationFlags(values);
  if (probation !== undefined) config.probation = probation;
  return layer;
}

/** --probation MS, --no-probation and the --probe-* flags, as the "probation" of the config file. */
function probationFlags(values: RunValues): false | Record<string, unknown> | undefined {
  const duration = wholeNumber('probation', values.probation);
  const probe: Record<string, unknown> = {};
  if (values['probe-path'] !== undefined) probe.path = values['probe-path'];
  const interval = wholeNumber('probe-interval', values['probe-interval']);
  if (interval !== undefined) probe.interval = interval;
  const failures = wholeNumber('probe-failures', values['probe-failures'], 'probes');
  if (failures !== undefined) probe.failures = failures;
  const probing = Object.keys(probe).length > 0;
  if (values['no-probation']) {
    if (duration !== undefined) throw contradict('--probation', '--no-probation');
    if (probing) throw contradict('--probe-*', '--no-probation');
    return false;
  }
  if (duration === undefined && !probing) return undefined;
  return { ...(duration === undefined ? {} : { duration }), ...(probing ? { probe } : {}) };
}
