/**
 * `overseer ctl status|restart|stop|reopen|upgrade`: reaches a running `overseer run` master
 * through its control socket (--control PATH, or the `control` key of -c CONFIG) and prints the
 * answer for people, or as the raw JSON with --json.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { describeFlagError } from './parse-flags.js';
import { controlPathOf } from './run-config-file.js';
import { CONTROL_COMMANDS, sendControl, type ControlCommand, type ControlResponse } from './control.js';
import { OverseerError } from '../errors.js';
import type { MasterStatus } from '../core/master.js';
import type { ManifestStatus } from '../manifest/status.js';

export const CTL_USAGE = `usage: overseer ctl COMMAND [--json] [--control PATH | -c CONFIG]

Talks to a running \`overseer run\` master through its control socket.

commands:
  status    the children (pid, generation, phase), uptime, bundle, addresses, last handoff and upgrade,
            the child on probation and the time left
  restart   a ready-first handoff; waits for it and prints the new child's pid, or why it failed
  stop      graceful stop: the children drain, then the master exits; waits until it has
  reopen    sends the reopen signal (default SIGUSR1) to the serving child, e.g. to reopen its logs
  upgrade   polls the release source now

options:
  --control PATH   the master's control socket
  -c, --config F   the master's config file; its "control" key names the socket
  --json           print the master's answer as JSON
  -h, --help       this text

Exit code 0 when the master did it, 1 when it could not (the reason is printed), 2 on bad usage.`;

const CTL_OPTIONS = {
  control: { type: 'string' },
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Requests that answer at once; restart and stop take as long as the handoff or the drain. */
const QUICK_TIMEOUT = 10_000;

type StatusAnswer = MasterStatus & { readonly names?: readonly string[]; readonly fetcher?: string; readonly manifest?: ManifestStatus };

function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h${String(minutes % 60).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d${String(hours % 24).padStart(2, '0')}h`;
}

/** `overseer ctl status` for people. */
export function formatStatus(status: StatusAnswer, now = Date.now()): string {
  const lines: string[] = [];
  lines.push(`master    pid ${status.pid}, up ${duration(now - status.startedAt)}${status.stopping ? ', stopping' : ''}`);
  lines.push(`bundle    ${status.sha256.slice(0, 12)}  ${status.bundlePath}`);
  const addresses = status.addresses.map((address, index) => {
    const name = status.names?.[index];
    return name === undefined ? address : `${name}=${address}`;
  });
  lines.push(`listen    ${addresses.length === 0 ? '(no sockets)' : addresses.join('  ')}`);
  if (status.fetcher !== undefined) lines.push(`fetcher   ${status.fetcher}`);
  if (status.manifest !== undefined) lines.push(...manifestLines(status.manifest, now));
  lines.push('children');
  if (status.children.length === 0) lines.push('  (none)');
  for (const child of [...status.children].sort((a, b) => b.generation - a.generation)) {
    const onProbation = status.probation?.pid === child.pid ? '  on probation' : '';
    lines.push(`  pid ${child.pid}  generation ${child.generation}  ${child.phase.padEnd(8)}  ${child.serving ? 'serving ' : '        '}  up ${duration(now - child.forkedAt)}${onProbation}`);
  }
  const handoff = status.lastHandoff;
  if (!handoff) {
    lines.push('handoff   none yet');
  } else if (handoff.type === 'handoff-completed') {
    lines.push(`handoff   completed ${duration(now - handoff.at)} ago (${handoff.reason}): ${handoff.from ?? '-'} -> ${handoff.to}, ready in ${handoff.timings.readyMs} ms, drained in ${handoff.timings.drainMs} ms`);
  } else {
    lines.push(`handoff   failed ${duration(now - handoff.at)} ago (${handoff.reason}): ${handoff.code}: ${handoff.error}`);
  }
  const upgrade = status.lastUpgrade;
  if (!upgrade) {
    lines.push('upgrade   none yet');
  } else if (upgrade.type === 'upgrade-applied') {
    lines.push(`upgrade   applied ${duration(now - upgrade.at)} ago: ${upgrade.sha256.slice(0, 12)}${upgrade.version ? ` (version ${upgrade.version})` : ''} from ${upgrade.source}${upgrade.restart ? '' : ', runs at the next restart'}`);
  } else {
    const what = upgrade.type === 'upgrade-rejected' ? 'rejected' : 'rolled back';
    const cause = upgrade.type === 'upgrade-rolled-back' && upgrade.cause !== undefined ? ` (${upgrade.cause})` : '';
    lines.push(`upgrade   ${what} ${duration(now - upgrade.at)} ago: ${upgrade.sha256?.slice(0, 12) ?? 'release'} from ${upgrade.source}: ${upgrade.code}${cause}: ${upgrade.error}`);
  }
  // The time left as the master counted it when it answered.
  const probation = status.probation;
  if (probation) lines.push(`probation child ${probation.pid} on probation, ${duration(probation.msLeft)} left (build ${probation.sha256.slice(0, 12)})`);
  return `${lines.join('\n')}\n`;
}

function describe(cmd: ControlCommand, response: Extract<ControlResponse, { ok: true }>): string {
  switch (cmd) {
    case 'status':
      return formatStatus(response.status as StatusAnswer);
    case 'restart':
      return `handoff completed: child ${String(response.pid)} is serving\n`;
    case 'stop':
      return `master ${String(response.pid)} stopped\n`;
    case 'reopen':
      return `sent ${String(response.signal)} to child ${String(response.pid)}\n`;
    case 'upgrade':
      return 'the master polls its release source now; `overseer ctl status` shows the outcome (last upgrade), as do its events\n';
  }
}

/**
 * Runs `overseer ctl` with the arguments after `ctl`; resolves with the exit code.
 * Bad usage throws ERR_OVERSEER_INVALID_CONFIG with subject 'ctl'.
 */
export async function runCtl(argv: readonly string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const usage = (message: string) => new OverseerError('ERR_OVERSEER_INVALID_CONFIG', message, { subject: 'ctl' });
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: CTL_OPTIONS, allowPositionals: true });
  } catch (error) {
    throw usage(describeFlagError(error, CTL_OPTIONS));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out.write(`${CTL_USAGE}\n`);
    return 0;
  }
  const [cmd, ...extra] = positionals;
  if (cmd === undefined) throw usage(`name a command: ${CONTROL_COMMANDS.join(', ')}`);
  if (!(CONTROL_COMMANDS as readonly string[]).includes(cmd)) throw usage(`unknown ctl command ${JSON.stringify(cmd)}; the commands are ${CONTROL_COMMANDS.join(', ')}`);
  if (extra.length > 0) throw usage(`unexpected ${JSON.stringify(extra[0])} after ${cmd}`);
  if (values.control !== undefined && values.config !== undefined) throw usage('--control and -c name the socket twice; give one');
  const socketPath = values.control !== undefined ? path.resolve(values.control)
    : values.config !== undefined ? controlPathOf(path.resolve(values.config))
      : undefined;
  if (socketPath === undefined) throw usage('which master? give --control PATH (its control socket) or -c CONFIG (its config file)');

  const command = cmd as ControlCommand;
  const quick = command !== 'restart' && command !== 'stop';
  const { response, closed } = await sendControl(socketPath, command, { timeout: quick ? QUICK_TIMEOUT : undefined });
  if (!response.ok) {
    if (values.json) out.write(`${JSON.stringify(response)}\n`);
    throw new OverseerError('ERR_OVERSEER_CONTROL_FAILED', `${command}: ${response.error} (${response.code})`, { subject: socketPath });
  }
  // The master closes a stop connection when it exits: that is when it has stopped.
  if (command === 'stop') await closed;
  out.write(values.json ? `${JSON.stringify(command === 'status' ? response.status : response, null, 2)}\n` : describe(command, response));
  return 0;
}

/** The manifest as this instance sees it: sequence and expiry, channel, identity, bucket and why. */
export function manifestLines(manifest: ManifestStatus, now = Date.now()): string[] {
  const lines = [
    `manifest  ${manifest.sequence === undefined ? 'none accepted yet' : `sequence ${manifest.sequence}, expires ${manifest.expires}`} from ${manifest.source}`,
    `instance  ${manifest.instanceId ?? '(not known yet)'}, channel ${manifest.channel}`,
  ];
  if (manifest.newest !== undefined) lines.push(`rollout   ${manifest.newest.version} at ${manifest.newest.rollout} %, this instance's bucket ${manifest.newest.bucket.toFixed(2)}`);
  if (manifest.reason !== undefined) lines.push(`release   ${manifest.action}: ${manifest.reason}`);
  if (manifest.refused !== undefined) lines.push(`refused   ${duration(now - manifest.refused.at)} ago: ${manifest.refused.code}: ${manifest.refused.error}`);
  return lines;
}
