/**
 * The settings of `overseer run`: the config file's Layer and the flags' Layer merged (a flag
 * wins over the file), the bundle chosen, and the master's options checked once, by
 * normalizeConfig, with names saying which source each option came from.
 */
import fs from 'node:fs';
import path from 'node:path';
import { normalizeConfig, type ResolvedConfig } from '../core/config.js';
import { OverseerError, describeError } from '../errors.js';
import type { OverseerEvent } from '../events.js';
import type { Fetcher } from '../upgrade/fetcher.js';
import type { Readiness } from '../core/launch/exec.js';
import { assertOptions, optionNames, type OptionNames, type OptionSpec } from '../options.js';
import { EVENT_LINE_PREFIX } from '../protocol.js';
import { fileLayer, readConfigFile } from './run-config-file.js';
import { flagError, flagLayer, parseRunFlags } from './run-flags.js';
import type { FetchSource, FetchSpec, Layer, ListenerGroup } from './run-layer.js';

export type { FetchSource, ListenerGroup } from './run-layer.js';

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
  /** The master's config: addresses, fetcher, timeouts, verification, bundlePath (always set). */
  readonly config: ResolvedConfig;
}

export const DEFAULT_REOPEN_SIGNAL: NodeJS.Signals = 'SIGUSR1';

type FetcherClass = (new (options: never) => Fetcher) & { readonly options: OptionSpec };

const FETCHERS: Readonly<Record<FetchSource, () => Promise<FetcherClass>>> = {
  http: async () => (await import('../../fetchers/http.js')).HttpFetcher,
  file: async () => (await import('../../fetchers/file.js')).FileFetcher,
  s3: async () => (await import('../../fetchers/s3.js')).S3Fetcher,
  github: async () => (await import('../../fetchers/github.js')).GitHubFetcher,
  manifest: async () => (await import('../../fetchers/manifest.js')).ManifestFetcher,
};

/** Checks the fetcher's options with the names the user gave them, then builds it. */
async function createFetcher(spec: FetchSpec, interval: number | undefined): Promise<Fetcher> {
  const options = interval === undefined ? spec.options : { ...spec.options, interval };
  const names = interval === undefined ? spec.names : optionNames(spec.names.owner, (option) => (option === 'interval' ? '--fetch-interval' : spec.names.of(option)));
  const Class = await FETCHERS[spec.source]();
  assertOptions(names, options, Class.options);
  return new Class(options as never);
}

/** The release source with --allow-insecure-http applied: HttpFetcher's allowInsecureHttp, for whichever source named the URL. */
function withInsecureHttp(spec: FetchSpec | undefined, allow: boolean): FetchSpec | undefined {
  if (!allow) return spec;
  if (spec?.source !== 'http') {
    throw flagError('--allow-insecure-http', `applies to an http release source (--fetch-url URL, or "fetch": { "http": { "url": … } } in the config file); ${spec === undefined ? 'there is none' : `this one is ${spec.source}`}`);
  }
  const names = optionNames(spec.names.owner, (option) => (option === 'allowInsecureHttp' ? '--allow-insecure-http' : spec.names.of(option)));
  return { ...spec, options: { ...spec.options, allowInsecureHttp: true }, names };
}

/** Which source gave each Config option: the flags when they set it, else the file. */
function mergedNames(file: Layer | undefined, flags: Layer): OptionNames {
  const fromFlags = (option: string): boolean => {
    const top = option.split(/[.[]/)[0] ?? option;
    if (top === 'addresses') return flags.listeners !== undefined;
    if (top === 'bundlePath') return flags.bundle !== undefined;
    if (top === 'verify') return Object.hasOwn((flags.config.verify as object | undefined) ?? {}, option.split('.')[1] ?? '');
    return flags.config[top] !== undefined;
  };
  return optionNames('overseer run', (option) => (file === undefined || fromFlags(option) ? flags : file).name(option));
}

/** Resolves a command name through PATH, as the shell would. */
function resolveOnPath(command: string): string | undefined {
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

function isInside(file: string, dir: string): boolean {
  const real = (target: string) => {
    try {
      return fs.realpathSync(target);
    } catch {
      return path.resolve(target);
    }
  };
  const relative = path.relative(real(dir), real(file));
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

/**
 * The file whose sha256 names the build and that releases replace. Given (--bundle, "bundle"),
 * it is used as is. Otherwise it is the command; when a release source is set, the command must
 * be a file inside the working directory: a program found on PATH (`python3`) or a file
 * elsewhere would be replaced by the release, so that is refused unless named explicitly.
 */
function chooseBundle(explicit: string | undefined, program: string, args: readonly string[], cwd: string, source: FetchSpec | undefined): string {
  if (explicit !== undefined) return explicit;
  const onPath = !program.includes('/');
  const candidate = onPath ? resolveOnPath(program) : path.resolve(cwd, program);
  if (candidate === undefined) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `cannot find ${JSON.stringify(program)} on PATH; give its path, or the bundle (--bundle PATH)`, { subject: program });
  }
  if (source === undefined || (!onPath && isInside(candidate, cwd))) return candidate;
  const script = args.find((arg) => !arg.startsWith('-') && isInside(path.resolve(cwd, arg), cwd) && fs.existsSync(path.resolve(cwd, arg)));
  const fix = `name the file releases replace with --bundle PATH (or "bundle" in the config file)${script === undefined ? '' : `, such as --bundle ${script}`}`;
  const where = onPath ? `is the program ${candidate}, found on PATH` : `is ${candidate}, outside the working directory ${cwd}`;
  throw new OverseerError(
    'ERR_OVERSEER_INVALID_CONFIG',
    `no bundle given, and the command ${JSON.stringify(program)} ${where}: releases from ${source.names.owner} would replace it; ` +
      `${fix}${onPath ? '' : `, or --bundle ${candidate} if replacing that file is really meant`}`,
    { subject: '--bundle' },
  );
}

/** `overseer run` argv (before the `--`) and the command after it → settings, or 'help'. */
export async function loadRunSettings(argv: readonly string[]): Promise<RunSettings | 'help'> {
  const split = argv.indexOf('--');
  const command = split === -1 ? [] : argv.slice(split + 1);
  const { values } = parseRunFlags(split === -1 ? [...argv] : argv.slice(0, split));
  if (values.help) return 'help';

  const configFile = values.config === undefined ? undefined : path.resolve(values.config);
  const file = configFile === undefined ? undefined : fileLayer(configFile, readConfigFile(configFile));
  const flags = flagLayer(values, command);

  const [program, ...args] = flags.command ?? file?.command ?? [];
  if (program === undefined) {
    throw new OverseerError(
      'ERR_OVERSEER_INVALID_CONFIG',
      configFile === undefined
        ? 'no command: put it after --, as in `overseer run --listen :3000 -- node server.js`'
        : `no command: ${configFile} has no "command" (such as ["node", "server.mjs"]) and none follows --`,
      { subject: '--' },
    );
  }
  const cwd = flags.cwd ?? file?.cwd ?? (configFile === undefined ? undefined : path.dirname(configFile));
  if (cwd !== undefined && !fs.statSync(cwd, { throwIfNoEntry: false })?.isDirectory()) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `the working directory ${cwd} (${flags.cwd === undefined ? 'cwd' : '--cwd'}) is not a directory`, { subject: cwd });
  }
  const fetchSpec = withInsecureHttp(flags.fetch ?? file?.fetch, flags.allowInsecureHttp === true);
  if (flags.fetchInterval !== undefined && fetchSpec === undefined) {
    throw flagError('--fetch-interval', 'needs a release source: --fetch-url, --fetch-file, or "fetch" in the config file');
  }
  const fetcher = fetchSpec === undefined ? undefined : await createFetcher(fetchSpec, flags.fetchInterval);
  const bundlePath = chooseBundle(flags.bundle ?? file?.bundle, program, args, cwd ?? process.cwd(), fetchSpec);
  try {
    fs.accessSync(bundlePath, fs.constants.R_OK);
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `cannot read the bundle ${bundlePath}: ${describeError(error)}; --bundle (or "bundle" in the config file) names the file whose sha256 identifies the build`, {
      subject: bundlePath,
      cause: error,
    });
  }
  const listeners = flags.listeners ?? file?.listeners ?? [];
  const verify = { ...(file?.config.verify as object | undefined), ...(flags.config.verify as object | undefined) };
  const config = normalizeConfig(
    {
      ...file?.config,
      ...flags.config,
      program: () => {},
      addresses: listeners.map((listener) => listener.address),
      ...(Object.keys(verify).length > 0 ? { verify } : {}),
      bundlePath,
      ...(fetcher === undefined ? {} : { fetcher }),
      ...(values.events === true ? { onEvent: (event: OverseerEvent) => process.stderr.write(`${EVENT_LINE_PREFIX}${JSON.stringify(event)}\n`) } : {}),
    },
    mergedNames(file, flags),
  );
  const pick = <K extends keyof Layer>(key: K): Layer[K] | undefined => flags[key] ?? file?.[key];
  return {
    configFile,
    command: program,
    args,
    cwd,
    env: { ...file?.env, ...flags.env },
    listeners,
    readiness: pick('readiness') ?? { kind: 'notify' },
    stopSignal: pick('stopSignal') ?? 'SIGTERM',
    reopenSignal: pick('reopenSignal') ?? DEFAULT_REOPEN_SIGNAL,
    check: pick('check') ?? true,
    control: pick('control'),
    pidFile: pick('pidFile'),
    fetchSource: fetchSpec?.source,
    config,
  };
}
