/**
 * The JSON config file of `overseer run` (-c): read, checked whole in one pass against FILE_SPEC
 * (run()'s own rules for the master's keys), and turned into a Layer whose paths are resolved
 * against the file's directory. Errors name the file and the JSON path of the bad key.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_SPEC, LISTENER_NAME } from '../core/config.js';
import { OverseerError, describeError } from '../errors.js';
import {
  assertOptions, invalidOption, isPlainObject, nestedNames, optionNames, required, rule, rules, withInner,
  type OptionNames, type OptionSpec,
} from '../options.js';
import { FETCH_CLASSES, isSignal, readPublicKey, type FetchSource, type FetchSpec, type Layer } from './run-layer.js';

const ENV_NAME = /^[^=\0]+$/;
const SOURCES = Object.keys(FETCH_CLASSES) as FetchSource[];

const LISTENER_SPEC: OptionSpec = {
  name: rule('a name of letters, digits, "_", "." and "-" (it goes into LISTEN_FDNAMES)', (value) => typeof value === 'string' && LISTENER_NAME.test(value)),
  address: required(rule('an address such as ":8080", "127.0.0.1:8080", "[::1]:8080" or "unix:/run/app.sock", or a port number', (value) => typeof value === 'string' || typeof value === 'number')),
};

const filePath = rule('a file path', (value) => typeof value === 'string' && value !== '');

/** Every key of the config file, in the order docs/command.md lists them. */
export const FILE_SPEC: OptionSpec = {
  listeners: withInner(rule('an array of { "name", "address" } (or address strings, or port numbers)', Array.isArray), (value, names, key) => {
    (value as unknown[]).forEach((item, index) => {
      const at = `${key}[${index}]`;
      if (typeof item === 'string' || typeof item === 'number') return;
      if (!isPlainObject(item)) throw invalidOption(names.of(at), '{ "name": "web", "address": ":8080" } or an address string', item);
      assertOptions(nestedNames(names, at), item, LISTENER_SPEC);
    });
  }),
  command: rule(
    'a non-empty array of strings, the program and its arguments, such as ["node", "server.mjs"]',
    (value) => Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string') && value[0] !== '',
  ),
  cwd: rule('a directory path', (value) => typeof value === 'string' && value !== ''),
  env: withInner(rule('an object of variable names to string values', isPlainObject), (value, names, key) => {
    for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
      if (!ENV_NAME.test(name)) throw invalidOption(names.of(key), 'an object of variable names (without "=") to string values', name);
      if (typeof item !== 'string') throw invalidOption(names.of(`${key}.${name}`), 'a string (environment values are strings; quote numbers)', item);
    }
  }),
  ready: withInner(
    rule('"notify" (the command writes READY=1 to $OVERSEER_READY_FD) or { "delay": ms }', (value) => value === 'notify' || isPlainObject(value)),
    (value, names, key) => {
      if (value === 'notify') return;
      assertOptions(nestedNames(names, key), value, { delay: required(rule('a whole number of milliseconds', (ms) => Number.isSafeInteger(ms) && (ms as number) >= 0)) });
    },
  ),
  stopSignal: rule('a signal name such as "SIGTERM"', isSignal),
  restartSignal: CONFIG_SPEC.restartSignal!,
  reopenSignal: rule('a signal name such as "SIGUSR1"', isSignal),
  terminateTimeout: CONFIG_SPEC.terminateTimeout!,
  readyTimeout: CONFIG_SPEC.readyTimeout!,
  respawn: CONFIG_SPEC.respawn!,
  bundle: filePath,
  check: rules.boolean,
  fetch: withInner(
    rule(`an object with one of ${SOURCES.map((name) => `"${name}"`).join(', ')}, such as { "http": { "url": "https://…" } }`, (value) => {
      const keys = isPlainObject(value) ? Object.keys(value) : [];
      return keys.length === 1 && SOURCES.includes(keys[0] as FetchSource);
    }),
    (value, names, key) => {
      const [source, options] = Object.entries(value as Record<string, unknown>)[0] ?? [];
      if (!isPlainObject(options)) throw invalidOption(names.of(`${key}.${source}`), `the options of ${FETCH_CLASSES[source as FetchSource]} (an object)`, options);
    },
  ),
  verify: CONFIG_SPEC.verify!,
  minFetchInterval: CONFIG_SPEC.minFetchInterval!,
  checkTimeout: CONFIG_SPEC.checkTimeout!,
  maxBundleSize: CONFIG_SPEC.maxBundleSize!,
  keepReleases: CONFIG_SPEC.keepReleases!,
  control: rule('the path of the control socket', (value) => typeof value === 'string' && value !== ''),
  pidFile: filePath,
  debug: rules.boolean,
};

/** The file's JSON path of a Config option. */
function fileKey(option: string): string {
  return option.replace(/^addresses\[(\d+)\]$/, 'listeners[$1].address').replace(/^addresses$/, 'listeners').replace(/^bundlePath$/, 'bundle');
}

/** A checked `fetch` value as a FetchSpec; a file fetcher's relative path resolves against `dir`. */
export function fetchSpecOf(data: Record<string, unknown>, dir: string, names: OptionNames): FetchSpec {
  const [source, options] = Object.entries(data.fetch as Record<string, Record<string, unknown>>)[0] as [FetchSource, Record<string, unknown>];
  const resolved = { ...options };
  if (source === 'file' && typeof resolved.path === 'string' && resolved.path !== '') resolved.path = path.resolve(dir, resolved.path);
  const manifestFile = source === 'manifest' && isPlainObject(resolved.file) ? resolved.file : undefined;
  if (manifestFile !== undefined && typeof manifestFile.path === 'string' && manifestFile.path !== '') resolved.file = { ...manifestFile, path: path.resolve(dir, manifestFile.path) };
  return { source, options: resolved, names: nestedNames(nestedNames(names, 'fetch'), source) };
}

/** Line and column (from 1) of `index` in `text`. */
function lineColumn(text: string, index: number): string {
  const before = text.slice(0, index).split('\n');
  return `line ${before.length} column ${(before.at(-1)?.length ?? 0) + 1}`;
}

/**
 * What is wrong with JSON that failed to parse, pointing at the offending character: a trailing
 * comma or a comment (the usual mistakes, which JSON.parse reports at the next token), else
 * where the parser stopped.
 */
export function jsonMistake(text: string, error: unknown): string {
  const message = describeError(error).replace(/ \(line \d+ column \d+\)/, '');
  const position = Number(/at position (\d+)/.exec(message)?.[1] ?? text.length);
  let inString = false;
  for (let index = 0; index < text.length && index <= position; index += 1) {
    const char = text[index];
    if (inString) {
      if (char === '\\') index += 1;
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    else if (char === '/' && (text[index + 1] === '/' || text[index + 1] === '*')) return `a comment at ${lineColumn(text, index)}; remove it`;
    else if (char === ',' && /^\s*[}\]]/.test(text.slice(index + 1))) return `a trailing comma at ${lineColumn(text, index)}; remove it`;
  }
  return `${message} (${lineColumn(text, position)})`;
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
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${file} is not valid JSON: ${jsonMistake(text, error)}; the config file is plain JSON, without comments or trailing commas`, {
      subject: file,
      cause: error,
    });
  }
  if (!isPlainObject(parsed)) throw invalidOption(`${file}: the top level`, 'an object such as { "command": [...], "listeners": [...] }', parsed);
  return parsed;
}

/** How the file's keys are named in errors: `<file>: listeners[1].address`. */
function fileNames(file: string): OptionNames {
  return optionNames(file, (option) => `${file}: ${option}`);
}

/** Checks a parsed config file in one pass and turns it into a Layer. */
export function fileLayer(file: string, data: Record<string, unknown>): Layer {
  const names = fileNames(file);
  assertOptions(names, data, FILE_SPEC);
  const dir = path.dirname(file);
  // A port number (3000) is all interfaces, as server.listen(3000) takes it.
  const resolveUnix = (given: string | number) => {
    const address = typeof given === 'number' ? `:${given}` : given;
    return address.startsWith('unix:') && address.length > 5 ? `unix:${path.resolve(dir, address.slice(5))}` : address;
  };
  const config: Record<string, unknown> = {};
  const layer: Layer = { config, name: (option) => names.of(fileKey(option)) };
  const given = data as {
    listeners?: Array<string | number | { name?: string; address: string | number }>; command?: string[]; cwd?: string; env?: Record<string, string>;
    ready?: 'notify' | { delay: number }; stopSignal?: NodeJS.Signals; reopenSignal?: NodeJS.Signals; bundle?: string; check?: boolean;
    verify?: Record<string, unknown>; control?: string; pidFile?: string;
  };
  if (given.listeners) {
    layer.listeners = given.listeners.map((item, index) =>
      typeof item !== 'object' ? { name: `listen${index}`, address: resolveUnix(item) } : { name: item.name ?? `listen${index}`, address: resolveUnix(item.address) });
  }
  if (given.command) layer.command = given.command;
  if (given.cwd !== undefined) layer.cwd = path.resolve(dir, given.cwd);
  if (given.env) layer.env = given.env;
  if (given.ready !== undefined) layer.readiness = given.ready === 'notify' ? { kind: 'notify' } : { kind: 'delay', ms: given.ready.delay };
  if (given.stopSignal) layer.stopSignal = given.stopSignal;
  if (given.reopenSignal) layer.reopenSignal = given.reopenSignal;
  if (given.bundle !== undefined) layer.bundle = path.resolve(dir, given.bundle);
  if (given.check !== undefined) layer.check = given.check;
  if (data.fetch !== undefined) layer.fetch = fetchSpecOf(data, dir, names);
  if (given.control !== undefined) layer.control = path.resolve(dir, given.control);
  if (given.pidFile !== undefined) layer.pidFile = path.resolve(dir, given.pidFile);
  for (const key of ['restartSignal', 'terminateTimeout', 'readyTimeout', 'minFetchInterval', 'checkTimeout', 'maxBundleSize', 'keepReleases', 'respawn', 'debug'] as const) {
    if (data[key] !== undefined) config[key] = data[key];
  }
  if (given.verify) {
    const { publicKey } = given.verify;
    config.verify =
      typeof publicKey === 'string' ? { ...given.verify, publicKey: readPublicKey(publicKey, dir, names.of('verify.publicKey')) }
      : Array.isArray(publicKey) ? { ...given.verify, publicKey: publicKey.map((key, index) => (typeof key === 'string' ? readPublicKey(key, dir, names.of(`verify.publicKey[${index}]`)) : key)) }
      : given.verify;
  }
  return layer;
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
  assertOptions(fileNames(configFile), { control }, { control: FILE_SPEC.control! });
  return path.resolve(path.dirname(configFile), control as string);
}
