#!/usr/bin/env node
/**
 * The `overseer` command. `overseer run` is the master for any executable: it binds the
 * sockets, hands them to CMD as fds 3.. (LISTEN_FDS, systemd style), restarts it ready-first,
 * upgrades it from a release source, and answers `overseer ctl` on its control socket.
 */
import fs from 'node:fs';
import { loadRunSettings, type RunSettings } from './run-settings.js';
import { runCtl } from './ctl.js';
import { packageVersion } from './version.js';
import { lockInstance } from './instance-lock.js';
import { clearStaleSocket, startControlServer, type ControlServer } from './control.js';
import { describeError, isOverseerError } from '../errors.js';
import { createLog } from '../events.js';
import { closest } from '../options.js';
import { exitProcess } from '../core/exit.js';
import { ExecLauncher, READY_FD_ENV } from '../core/launch/exec.js';
import type { Master } from '../core/master.js';
import { startMaster } from '../core/start.js';

const USAGE = `usage: overseer run [options] [-- CMD [ARGS...]]
       overseer ctl status|restart|stop|reopen|upgrade [--json] [--control PATH | -c CONFIG]
       overseer deploy DIR [options]      (see overseer deploy --help)
       overseer check APP.mjs | [options] -- CMD [ARGS...]   (see overseer check --help)
       overseer release create|rollout|pull|unpull|renew|sign|verify|show|keygen ...   (see overseer release --help)

\`overseer run\` runs CMD under an overseer master: the master binds every listener, hands the
sockets to CMD as fds 3, 4, ... (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID, as systemd does), and
on the restart signal (SIGUSR2 or SIGHUP), \`overseer ctl restart\` or a new release starts a new
CMD, waits until it is ready, then stops the old one gracefully.

options (each overrides the same key of the config file):
  -c, --config FILE         a JSON config file with the keys below (see docs/command.md)
  --listen [NAME=]ADDR      bind ADDR (:3000, 127.0.0.1:3000, [::1]:3000, unix:/path); repeatable;
                            NAME goes into LISTEN_FDNAMES; replaces the file's "listeners"
  --cwd DIR                 where CMD runs (default: the config file's directory, else here)
  --env NAME=VALUE          set a variable for CMD; repeatable
  --ready notify            CMD is ready when it writes READY=1 to the fd in $${READY_FD_ENV} (default)
  --ready-delay MS          CMD is ready MS after it started (for programs that cannot say)
  --preload, --no-preload   for a Node CMD, make listen(PORT) on a --listen port serve on the held
                            socket, report ready and drain (default on; see docs/command.md)
  --stop-signal SIG         how a child is asked to drain and exit (default SIGTERM)
  --restart-signal SIG      signal to the master that starts a handoff (default SIGUSR2; SIGHUP too)
  --reopen-signal SIG       what \`overseer ctl reopen\` sends the child (default SIGUSR1)
  --terminate-timeout MS    drain deadline of an old child, then SIGKILL (default 30000)
  --ready-timeout MS        a new child must be ready by then or the old one stays (default 30000)
  --respawn, --no-respawn   start a new child when the child exits on its own (default off)
  --bundle PATH             the file upgrades replace, whose sha256 names the build (default: CMD;
                            with a release source, CMD must then be a file inside the working directory)
  --fetch JSON              the release source as the config file's "fetch" takes it, for S3, GitHub,
                            headers and sidecar URLs: '{"github":{"owner":"me","repo":"app"}}'
  --fetch-url URL           poll this URL for new releases of the bundle (an HttpFetcher)
  --fetch-file PATH         poll this file for new releases of the bundle (a FileFetcher)
  --fetch-interval MS       how often to poll (default 300000 for URLs, 1000 for files)
  --min-fetch-interval MS   floor between two polls (default 1000)
  --sha256 required         refuse releases whose source gives no sha256 (default optional)
  --public-key KEY|@FILE    minisign public key releases must be signed with
  --allow-downgrade         accept releases that report a lower version
  --check, --no-check       run the echo-token check on releases (default on; CMD must answer it)
  --check-timeout MS        time a release has to answer the check (default 5000)
  --max-bundle-size BYTES   largest release accepted (default 536870912)
  --keep-releases N         old release folders kept besides the live one and .previous (default 3)
  --probation MS            a release must hold this long after its handoff or the previous build
                            comes back (default 30000); --no-probation turns it off
  --probe-path PATH         during probation, GET PATH through the listener; failures fail it
  --probe-interval MS       time between probes (default 1000)
  --probe-failures N        failed probes in a row that fail the probation (default 3)
  --control PATH            answer \`overseer ctl\` on this unix socket (mode 0600)
  --pid-file PATH           write the master's pid here; a second master on it refuses to start
  --debug                   print lifecycle events on stderr
  --events                  print each lifecycle event on stderr as one line: overseer-event {json}
  --allow-insecure-http     let --fetch-url (or fetch.http) use plain http: to another machine
                            (default: https, or http only to this machine)
  -h, --help                this text
  -v, --version             print overseer's version

The master exits with CMD's exit code (128+N when a signal N ended it).`;

/** A usage mistake: the error and one line saying where help is, not the whole usage. */
function fail(message: string, help: string): never {
  process.stderr.write(`overseer: ${message}\n${help}\n`);
  return exitProcess(2);
}

const RUN_HELP = 'see `overseer run --help` for the options, docs/command.md for the config file';
const CTL_HELP = 'see `overseer ctl --help`';
const MAIN_HELP = 'see `overseer --help`';
const RELEASE_HELP = 'see `overseer release --help`';
const COMMANDS = ['run', 'ctl', 'deploy', 'check', 'release'];

/** Removes the pid file if it is still this master's (the lock release does it too; this runs on any exit). */
function removePidFileSync(pidFile: string | undefined): void {
  if (pidFile === undefined) return;
  try {
    if (fs.readFileSync(pidFile, 'utf8').trim() === String(process.pid)) fs.unlinkSync(pidFile);
  } catch {
    // gone already
  }
}

async function startRun(settings: RunSettings): Promise<void> {
  const { config } = settings;
  const log = createLog(config, 'master');
  // Say which file releases will replace before anything can replace it.
  if (settings.fetchSource !== undefined) process.stderr.write(`[overseer master] releases (${settings.fetchSource}) replace the bundle ${config.bundlePath}\n`);
  else log.debug(`bundle ${config.bundlePath} (its sha256 names the build; no release source)`);
  const lock = await lockInstance({ pidFile: settings.pidFile, control: settings.control, log });
  let master: Master | undefined;
  let control: ControlServer | undefined;
  const cleanup = () => {
    control?.close();
    removePidFileSync(settings.pidFile);
  };
  process.once('exit', cleanup);
  try {
    if (settings.control !== undefined) {
      await clearStaleSocket(settings.control);
      control = await startControlServer({
        path: settings.control,
        master: () => master,
        reopenSignal: settings.reopenSignal,
        describe: () => ({
          names: settings.listeners.map((listener) => listener.name),
          ...(settings.fetchSource ? { fetcher: settings.fetchSource } : {}),
          ...manifestStatusOf(settings.config.fetcher),
        }),
        log,
      });
    }
    const launcher = new ExecLauncher({
      command: settings.command,
      args: settings.args,
      cwd: settings.cwd,
      env: settings.env,
      readiness: settings.readiness,
      stopSignal: settings.stopSignal,
      names: settings.listeners.map((listener) => listener.name),
      bundlePath: config.bundlePath ?? settings.command,
      check: settings.check,
      preload: settings.preload,
    });
    // SIGHUP restarts too, as daemons do on reload (systemd's ExecReload=kill -HUP).
    master = await startMaster(config, {
      launcher,
      extraRestartSignals: config.restartSignal === 'SIGHUP' ? [] : ['SIGHUP'],
      onStop: [async () => {
        cleanup();
        await lock.release();
      }],
    });
  } catch (error) {
    cleanup();
    await lock.release();
    throw error;
  }
}

async function runCommand(argv: string[]): Promise<void> {
  let settings: RunSettings | 'help';
  try {
    settings = await loadRunSettings(argv);
  } catch (error) {
    // The message names the flag, or the file and its key.
    if (isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG', 'ERR_OVERSEER_BAD_ADDRESS')) return fail(error.message, RUN_HELP);
    throw error;
  }
  if (settings === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  await startRun(settings);
}

async function ctlCommand(argv: string[]): Promise<void> {
  try {
    await runCtl(argv);
  } catch (error) {
    if (isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG')) return fail(error.message, error.subject === 'ctl' ? CTL_HELP : RUN_HELP);
    throw error;
  }
}

async function releaseCommand(argv: string[]): Promise<void> {
  try {
    process.exitCode = await (await import('../release/cli.js')).runRelease(argv);
  } catch (error) {
    if (isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG')) return fail(error.message, RELEASE_HELP);
    throw error;
  }
}

async function main(): Promise<void> {
  const [subcommand, ...rest] = process.argv.slice(2);
  switch (subcommand) {
    case 'run':
      return runCommand(rest);
    case 'ctl':
      return ctlCommand(rest);
    case 'deploy':
      return (await import('../deploy/cli.js')).runDeploy(rest);
    case 'check':
      return (await import('../check/cli.js')).runCheck(rest);
    case 'release':
      return releaseCommand(rest);
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(`${USAGE}\n`);
      return;
    case '-v':
    case '--version':
      process.stdout.write(`${packageVersion()}\n`);
      return;
    default: {
      const hint = closest(subcommand, subcommand.startsWith('-') ? ['--help', '--version'] : COMMANDS);
      fail(`unknown command ${JSON.stringify(subcommand)}${hint === undefined ? '' : ` (did you mean ${hint}?)`}; the commands are run, ctl, deploy, check and release`, MAIN_HELP);
    }
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`overseer: ${isOverseerError(error) ? error.message : describeError(error)}\n`);
  exitProcess(1);
});

/** The manifest lines of `overseer ctl status`, when the release source is a ManifestFetcher. */
function manifestStatusOf(fetcher: unknown): { manifest?: unknown } {
  const status = (fetcher as { manifestStatus?: () => unknown } | undefined)?.manifestStatus;
  return typeof status === 'function' ? { manifest: status.call(fetcher) } : {};
}
