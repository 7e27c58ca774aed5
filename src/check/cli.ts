/**
 * `overseer check`: proves that a program hands off without a failed request. A run() app runs
 * under its own master with the check's preload; any other command runs through `overseer run`
 * itself (its flags and config file, checked by loadRunSettings), on a free loopback port.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { OverseerError, isOverseerError } from '../errors.js';
import { parseAddress } from '../core/config.js';
import { exitProcess } from '../core/exit.js';
import { RUN_OPTIONS } from '../cli/run-flags.js';
import { loadRunSettings } from '../cli/run-settings.js';
import { describeFlagError } from '../cli/parse-flags.js';
import { checkTarget, waitUntilServing, type CheckOptions } from './check.js';
import { formatReport } from './format.js';
import { startTarget, type Target, type TargetSpec } from './target.js';

export const CHECK_USAGE = `usage: overseer check [options] APP.mjs [ARGS...]           a run() app
       overseer check [options] [run options] -- CMD [ARGS...]   any executable, as \`overseer run\` takes it

Starts the program under a master on a free loopback port, puts it under an open-loop load,
runs handoffs (SIGUSR2) with keep-alive on and then off, and reports every failed request with
what caused it and the fix. Exits 0 when no request failed, 1 otherwise.

options:
  --handoffs N              handoffs per run (default 10)
  --rate N                  requests per second (default 500)
  --duration MS             steady load before the first handoff (default 2000)
  --url PATH                the path to GET (default /)
  --json                    print the report as JSON
  --terminate-timeout MS    drain deadline of an old child (default: the program's, at most 10000)
  --ready-timeout MS        a new child must be ready by then (default: the program's, at most 10000)
  -h, --help                this text

With -- CMD, every \`overseer run\` option applies (-c FILE, --listen NAME=ADDR, --ready-delay,
--stop-signal, --env, ...): each listener is moved to 127.0.0.1 on a free port (for a Node
program under the listen preload, on its own port: an unchanged app listens on the port it
knows), the first is loaded.
See docs/testing.md.`;

const CHECK_OPTIONS = {
  handoffs: { type: 'string' },
  rate: { type: 'string' },
  duration: { type: 'string' },
  url: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** The limit check puts on the program's own deadlines, so a stuck child costs seconds, not minutes. */
export const CHECK_TIMEOUT_CAP = 10_000;

function usage(message: string): OverseerError {
  return new OverseerError('ERR_OVERSEER_INVALID_CONFIG', message, { subject: 'check' });
}

function count(flag: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!/^\d+$/.test(value) || number < min) throw usage(`--${flag} takes a whole number of at least ${min}; got ${JSON.stringify(value)}`);
  return number;
}

function urlPath(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!value.startsWith('/') || /[\s\r\n]/.test(value)) throw usage(`--url takes a path such as /health (no spaces); got ${JSON.stringify(value)}`);
  return value;
}

interface Plan {
  readonly spec: TargetSpec;
  readonly options: CheckOptions;
  readonly json: boolean;
}

/** argv → what to start and how to check it, or 'help'. Mistakes throw ERR_OVERSEER_INVALID_CONFIG naming the flag. */
export async function planCheck(argv: readonly string[]): Promise<Plan | 'help'> {
  const split = argv.indexOf('--');
  const before = split === -1 ? [...argv] : argv.slice(0, split);
  const command = split === -1 ? [] : argv.slice(split + 1);
  const all = { ...RUN_OPTIONS, ...CHECK_OPTIONS };
  let parsed;
  try {
    parsed = parseArgs({ args: before, options: all, allowPositionals: split === -1, strict: true, tokens: true });
  } catch (error) {
    throw usage(describeFlagError(error, all));
  }
  const { values, positionals, tokens } = parsed;
  if (values.help) return 'help';
  const check = {
    handoffs: count('handoffs', values.handoffs, 0),
    rate: count('rate', values.rate, 1),
    durationMs: count('duration', values.duration, 0),
    path: urlPath(values.url),
  };
  const terminate = count('terminate-timeout', values['terminate-timeout'], 1);
  const ready = count('ready-timeout', values['ready-timeout'], 1);
  const base = {
    ...(check.handoffs === undefined ? {} : { handoffs: check.handoffs }),
    ...(check.rate === undefined ? {} : { rate: check.rate }),
    ...(check.durationMs === undefined ? {} : { durationMs: check.durationMs }),
    ...(check.path === undefined ? {} : { path: check.path }),
  };

  // A config file names its command: `overseer check -c overseer.json` is the command form.
  const appForm = split === -1 && !(positionals.length === 0 && values.config !== undefined);
  if (appForm) {
    const [script, ...args] = positionals;
    if (script === undefined) throw usage('nothing to check: give a run() app (`overseer check app.mjs`) or a command after -- (`overseer check --listen :3000 -- python3 server.py`)');
    const runOnly = tokens.filter((token) => token.kind === 'option' && !['terminate-timeout', 'ready-timeout', 'json', 'help', ...Object.keys(CHECK_OPTIONS)].includes(token.name));
    const first = runOnly[0];
    if (first?.kind === 'option') throw usage(`${first.rawName} is an \`overseer run\` option: it applies to a command after -- (overseer check [options] -- CMD ARGS), not to a run() app, whose config is in its run() call`);
    const spec: TargetSpec = {
      kind: 'app', script: path.resolve(script), args,
      overrides: {
        ...(terminate === undefined ? { maxTerminateTimeout: CHECK_TIMEOUT_CAP } : { terminateTimeout: terminate }),
        ...(ready === undefined ? { maxReadyTimeout: CHECK_TIMEOUT_CAP } : { readyTimeout: ready }),
      },
    };
    return { spec, json: values.json === true, options: { ...base, terminateTimeout: terminate ?? CHECK_TIMEOUT_CAP, readyTimeout: ready ?? CHECK_TIMEOUT_CAP } };
  }

  // `overseer run`'s own flags, as given, minus check's and the listeners check replaces.
  const runArgs: string[] = [];
  for (const token of tokens) {
    if (token.kind !== 'option' || Object.hasOwn(CHECK_OPTIONS, token.name) || token.name === 'listen' || token.name === 'events') continue;
    runArgs.push(`--${token.name}`, ...(token.value === undefined ? [] : [token.value]));
  }
  // The same path as `overseer run`: the config file and flags checked, merged and named the same way.
  const settings = await loadRunSettings([...runArgs, ...(values.listen ?? []).flatMap((each) => ['--listen', each]), '--', ...command]);
  if (settings === 'help') return 'help';
  // An unchanged Node app (the listen preload) calls listen() with its own port number, which is
  // what the preload matches: it keeps that port, on loopback. Anything else takes a free port.
  const onLoopback = (address: string): string => {
    const parsed = parseAddress(address, '--listen');
    return settings.preload && parsed.kind === 'tcp' ? `127.0.0.1:${parsed.port}` : '127.0.0.1:0';
  };
  const listeners = settings.listeners.length === 0 ? ['127.0.0.1:0'] : settings.listeners.map((listener) => `${listener.name}=${onLoopback(listener.address)}`);
  const terminateTimeout = terminate ?? Math.min(settings.config.terminateTimeout, CHECK_TIMEOUT_CAP);
  const readyTimeout = ready ?? Math.min(settings.config.readyTimeout, CHECK_TIMEOUT_CAP);
  const spec: TargetSpec = {
    kind: 'command',
    runArgs: [
      ...runArgs.filter((arg, index) => !['--terminate-timeout', '--ready-timeout'].includes(arg) && !['--terminate-timeout', '--ready-timeout'].includes(runArgs[index - 1] ?? '')),
      ...listeners.flatMap((listener) => ['--listen', listener]),
      '--terminate-timeout', String(terminateTimeout), '--ready-timeout', String(readyTimeout),
    ],
    command: command.length > 0 ? command : [settings.command, ...settings.args],
  };
  return { spec, json: values.json === true, options: { ...base, terminateTimeout, readyTimeout } };
}

/** `overseer check …`: prints the report and sets the exit code (0 nothing failed, 1 something did, 2 usage). */
export async function runCheck(argv: readonly string[]): Promise<void> {
  let plan: Plan | 'help';
  try {
    plan = await planCheck(argv);
  } catch (error) {
    if (isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG', 'ERR_OVERSEER_BAD_ADDRESS')) {
      process.stderr.write(`overseer check: ${error.message}\nsee \`overseer check --help\`\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  if (plan === 'help') {
    process.stdout.write(`${CHECK_USAGE}\n`);
    return;
  }
  const target: Target = startTarget(plan.spec);
  // Ctrl-C or a stop: end what the check started, then go.
  const interrupt = (signal: NodeJS.Signals) => {
    void target.stop(5_000).then(() => exitProcess(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    if (!plan.json) process.stderr.write(`overseer check: starting ${target.describe}…\n`);
    const first = await waitUntilServing(target, plan.options.readyTimeout);
    const report = await checkTarget(target, first, plan.options);
    process.stdout.write(plan.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    process.exitCode = report.ok ? 0 : 1;
  } finally {
    await target.stop(plan.options.terminateTimeout + 5_000);
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', interrupt);
  }
}
