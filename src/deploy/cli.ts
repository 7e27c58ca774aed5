/**
 * The `overseer deploy DIR` command line: parses the flags, runs a Deployment in the
 * foreground, prints what happens (one line per event, app output prefixed with its name), and
 * stops every app gracefully on SIGTERM or SIGINT. Importing this module runs nothing.
 */
import { parseArgs } from 'node:util';
import { Deployment, DEPLOY_DEFAULTS, type DeployEvent } from './deployment.js';
import { describeError } from '../errors.js';

const USAGE = `usage: overseer deploy DIR [options]

Keeps every application folder in DIR running, each under an overseer run master:

  DIR/APP/app.json   what to run: { "command": ["./server"], "listen": ["web=:8080"], ... }
  DIR/APP/current/   the running release (its working directory)
  DIR/APP/release/   the next release, staged by the deployer; write release/.ready last
  DIR/APP/archive/   earlier releases
  DIR/APP/command/   drop a file named release, rollback, stop or start to act; it is
                     removed once handled, and command/NAME.failed says why when it failed

options:
  --archives N        archives kept per app (default ${DEPLOY_DEFAULTS.archives}; app.json "archives" overrides)
  --quiet-period MS   also take a release/ without .ready once nothing in it changed for MS
  --poll MS           look at command/ folders this often besides watching them (default ${DEPLOY_DEFAULTS.poll})
  --debug             print every lifecycle event of the masters
  -h, --help          this text

SIGTERM or SIGINT stops every app gracefully, then overseer deploy exits 0; SIGHUP looks at
DIR and the command/ folders at once. See docs/deploy.md.`;

function usageError(message: string): void {
  process.stderr.write(`overseer: ${message}\n\n${USAGE}\n`);
  process.exitCode = 2;
}

function count(flag: string, value: string | undefined, min: number): number | undefined | null {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < min) {
    usageError(`--${flag} takes a whole number${min > 0 ? ` from ${min}` : ''}; got ${JSON.stringify(value)}`);
    return null;
  }
  return Number(value);
}

/** Runs `overseer deploy` with the arguments after `deploy`; resolves once every app stopped. */
export async function runDeploy(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        archives: { type: 'string' },
        'quiet-period': { type: 'string' },
        poll: { type: 'string' },
        debug: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    });
  } catch (error) {
    return usageError(describeError(error));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (positionals.length !== 1) return usageError(positionals.length === 0 ? 'no DIR: give the deployment folder, as in `overseer deploy /srv/apps`' : `one DIR only; got ${positionals.map((item) => JSON.stringify(item)).join(', ')}`);
  const archives = count('archives', values.archives, 0);
  const quietPeriod = count('quiet-period', values['quiet-period'], 1);
  const poll = count('poll', values.poll, 10);
  if (archives === null || quietPeriod === null || poll === null) return;
  const debug = values.debug === true;

  const deployment = new Deployment({
    dir: positionals[0] ?? '',
    ...(archives === undefined ? {} : { archives }),
    ...(quietPeriod === undefined ? {} : { quietPeriod }),
    ...(poll === undefined ? {} : { poll }),
    onEvent: (event) => {
      const line = describeEvent(event, debug);
      if (line !== undefined) process.stderr.write(`overseer deploy: ${event.app}: ${line}\n`);
    },
    onOutput: ({ app, stream, text }) => (stream === 'stdout' ? process.stdout : process.stderr).write(`[${app}] ${text}\n`),
  });

  let stopRequests = 0;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  const onStop = () => {
    stopRequests += 1;
    // A second Ctrl-C does not wait for drains any more.
    void deployment.stop({ kill: stopRequests > 1 }).then(resolveStopped);
  };
  const onHangup = () => void deployment.rescan();
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHangup);
  try {
    try {
      await deployment.start();
    } catch (error) {
      await deployment.stop();
      throw error;
    }
    const apps = deployment.apps().length;
    process.stderr.write(`overseer deploy: watching ${positionals[0] ?? ''} (${apps} app${apps === 1 ? '' : 's'})\n`);
    await stopped;
  } finally {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onHangup);
  }
  process.stderr.write('overseer deploy: every app stopped\n');
}

/** One line for an event, or undefined for events not worth a line. */
export function describeEvent(event: DeployEvent, debug = false): string | undefined {
  switch (event.type) {
    case 'app-found':
      return 'found';
    case 'app-error':
      return `error: ${event.error}`;
    case 'app-state':
      if (event.state === 'running') return `overseer run started (pid ${event.pid})`;
      if (event.state === 'backoff') return `overseer run exited (${event.signal ?? `code ${event.exitCode}`}); starting it again after a delay`;
      if (event.state === 'interrupted') return 'stopped';
      if (event.state === 'fatal' || event.state === 'finished') return `overseer run ended (${event.signal ?? `code ${event.exitCode}`})`;
      return undefined;
    case 'app-listening':
      return event.addresses.length === 0 ? `master ready (pid ${event.pid}, no listeners)` : `listening on ${event.addresses.join(', ')} (master pid ${event.pid})`;
    case 'app-ready':
      return `child ${event.pid} ready (generation ${event.generation})`;
    case 'release-waiting':
      return `waiting: ${event.why}`;
    case 'release-verified':
      if (event.checked === 0) return 'release has no SHA256SUMS: taken unchecked';
      return `release verified: ${event.checked} file${event.checked === 1 ? '' : 's'} match SHA256SUMS${event.keyId ? `, signed by minisign key ${event.keyId}` : ''}`;
    case 'archives-pruned':
      return `removed old archives ${event.removed.join(', ')}`;
    case 'command-done':
      return `command/${event.command} done: ${event.detail}`;
    case 'command-failed':
      return `command/${event.command} failed: ${event.code}: ${event.error}`;
    case 'master-event':
      return debug ? `${event.event.type} ${JSON.stringify(event.event)}` : undefined;
  }
}
