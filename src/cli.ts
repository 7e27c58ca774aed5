#!/usr/bin/env node
/**
 * The `overseer` command. `overseer run` is the master for any executable: it binds the
 * sockets, hands them to CMD as fds 3.. (LISTEN_FDS, systemd style), and restarts it
 * ready-first on the restart signal, with the same drain deadline, signal forwarding and
 * exit-code pass-through as run().
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { normalizeConfig } from './config.js';
import { describeError, isOverseerError } from './errors.js';
import type { OverseerEvent } from './events.js';
import { EVENT_LINE_PREFIX } from './protocol.js';
import { exitProcess } from './exit.js';
import { ExecLauncher, READY_FD_ENV, type Readiness } from './launch-exec.js';
import { startMaster } from './master.js';

const USAGE = `usage: overseer run [options] -- CMD [ARGS...]

Runs CMD under an overseer master: the master binds every --listen address, hands the sockets
to CMD as fds 3, 4, ... (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID, as systemd does), and on the
restart signal starts a new CMD, waits until it is ready, then stops the old one gracefully.

options:
  --listen [NAME=]ADDR    bind ADDR (:3000, 127.0.0.1:3000, [::1]:3000, unix:/path); repeatable;
                          NAME goes into LISTEN_FDNAMES
  --ready notify          CMD is ready when it writes READY=1 to the fd in $${READY_FD_ENV} (default)
  --ready-delay MS        CMD is ready MS after it started (for programs that cannot say)
  --stop-signal SIG       how a child is asked to drain and exit (default SIGTERM)
  --restart-signal SIG    signal to the master that starts a handoff (default SIGUSR2)
  --terminate-timeout MS  drain deadline of an old child, then SIGKILL (default 30000)
  --ready-timeout MS      a new child must be ready by then or the old one stays (default 30000)
  --respawn               start a new child when the child exits on its own
  --bundle PATH           the file whose sha256 identifies the running build (default: CMD)
  --debug                 print lifecycle events on stderr
  --events                print each lifecycle event on stderr as one line: overseer-event {json}
  -h, --help              this text

The master exits with CMD's exit code (128+N when a signal N ended it).`;

function fail(message: string): never {
  process.stderr.write(`overseer: ${message}\n\n${USAGE}\n`);
  return exitProcess(2);
}

function milliseconds(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number)) fail(`--${flag} takes a whole number of milliseconds; got ${JSON.stringify(value)}`);
  return number;
}

function signal(flag: string, value: string | undefined): NodeJS.Signals | undefined {
  if (value === undefined) return undefined;
  const name = (value.startsWith('SIG') ? value : `SIG${value}`).toUpperCase();
  if (!/^SIG[A-Z0-9]+$/.test(name)) fail(`--${flag} takes a signal name such as SIGTERM; got ${JSON.stringify(value)}`);
  return name as NodeJS.Signals;
}

/** Resolves a command name through PATH, as the shell would, for hashing its file. */
function resolveCommand(command: string): string | undefined {
  if (command.includes('/')) return path.resolve(command);
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
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

async function runCommand(argv: string[]): Promise<void> {
  const split = argv.indexOf('--');
  const [command, ...args] = split === -1 ? [] : argv.slice(split + 1);
  let parsed;
  try {
    parsed = parseArgs({
      args: split === -1 ? argv : argv.slice(0, split),
      options: {
        listen: { type: 'string', multiple: true },
        ready: { type: 'string' },
        'ready-delay': { type: 'string' },
        'stop-signal': { type: 'string' },
        'restart-signal': { type: 'string' },
        'terminate-timeout': { type: 'string' },
        'ready-timeout': { type: 'string' },
        respawn: { type: 'boolean' },
        bundle: { type: 'string' },
        debug: { type: 'boolean' },
        events: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    });
  } catch (error) {
    return fail(describeError(error));
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!command) fail('no command: put it after --, as in `overseer run --listen :3000 -- node server.js`');
  const listens = (values.listen ?? []).map((item) => {
    const match = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(item);
    return match ? { name: match[1] ?? '', address: match[2] ?? '' } : { name: undefined, address: item };
  });
  const readyDelay = milliseconds('ready-delay', values['ready-delay']);
  if (values.ready !== undefined && values.ready !== 'notify') fail(`--ready takes "notify" (or use --ready-delay MS); got ${JSON.stringify(values.ready)}`);
  const readiness: Readiness = readyDelay === undefined ? { kind: 'notify' } : { kind: 'delay', ms: readyDelay };
  const bundlePath = values.bundle ?? resolveCommand(command);
  if (!bundlePath) fail(`cannot find ${JSON.stringify(command)} on PATH; give its path, or --bundle PATH`);

  const terminateTimeout = milliseconds('terminate-timeout', values['terminate-timeout']);
  const readyTimeout = milliseconds('ready-timeout', values['ready-timeout']);
  const restartSignal = signal('restart-signal', values['restart-signal']);
  let config;
  try {
    config = normalizeConfig({
      program: () => {},
      addresses: listens.map((listen) => listen.address),
      bundlePath,
      ...(terminateTimeout === undefined ? {} : { terminateTimeout }),
      ...(readyTimeout === undefined ? {} : { readyTimeout }),
      ...(restartSignal === undefined ? {} : { restartSignal }),
      ...(values.respawn ? { respawn: true } : {}),
      ...(values.debug ? { debug: true } : {}),
      ...(values.events ? { onEvent: (event: OverseerEvent) => process.stderr.write(`${EVENT_LINE_PREFIX}${JSON.stringify(event)}\n`) } : {}),
    });
  } catch (error) {
    // Config errors name config.* options; on the command line they are flags.
    return fail(describeError(error).replace(/^overseer: /, '').replace(/config\.addresses\[\d+\]/, '--listen'));
  }
  const launcher = new ExecLauncher({
    command,
    args,
    readiness,
    stopSignal: signal('stop-signal', values['stop-signal']),
    names: listens.map((listen, index) => listen.name ?? `listen${index}`),
    bundlePath,
  });
  await startMaster(config, launcher);
}

async function main(): Promise<void> {
  const [subcommand, ...rest] = process.argv.slice(2);
  switch (subcommand) {
    case 'run':
      return runCommand(rest);
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      fail(`unknown command ${JSON.stringify(subcommand)}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`overseer: ${isOverseerError(error) ? error.message.replace(/^overseer: /, '') : describeError(error)}\n`);
  exitProcess(1);
});
