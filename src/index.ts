/**
 * overseer's public entry. run() picks the process's role from one environment marker:
 * no marker → master; OVERSEER_ROLE=child → child; OVERSEER_ROLE=check:<token> → answer the
 * echo-token check of a staged release and exit.
 */
import fs from 'node:fs';
import { normalizeConfig, type Config, type ResolvedConfig } from './core/config.js';
import { OverseerError } from './errors.js';
import { createLog } from './events.js';
import { exitProcess } from './core/exit.js';
import { canBindHandles } from './core/listeners.js';
import { startMaster } from './core/start.js';
import { applyCheckHook } from './check/hook.js';
import { CHECK_LINE_PREFIX, PROTOCOL, ROLE_CHECK_PREFIX, ROLE_CHILD, ROLE_ENV, childMessage } from './protocol.js';

export { OverseerError, isOverseerError, CODES, type ErrorCode } from './errors.js';
export { DEFAULTS, type Config, type RespawnOptions, type VerifyOptions } from './core/config.js';
export type { State, Listener, Listenable } from './core/state.js';
export type { OverseerEvent, HandoffTimings, UpgradeTimings } from './events.js';
export type { Fetcher, FetchContext, FetchResult, Release } from './upgrade/fetcher.js';

let started = false;
let inProcess = false;
let isChild = false;

/** True where the master can run: a POSIX platform whose Node can bind sockets for children. */
export function isSupported(): boolean {
  return process.platform !== 'win32' && canBindHandles();
}

/**
 * Runs the program under overseer. In the master it binds, forks and supervises, and the
 * process ends with the child's exit code (the returned promise never settles there). In a
 * child it runs `config.program` and resolves once the program is ready. Throws
 * ERR_OVERSEER_INVALID_CONFIG synchronously, before anything binds or forks.
 */
export function run(config: Config): Promise<void> {
  const role = process.env[ROLE_ENV];
  // Only a master started by `overseer check` or overseer/testing has a hook (their own port, events).
  const resolved = normalizeConfig(role === undefined ? applyCheckHook(config) : config);
  if (started) {
    throw new OverseerError('ERR_OVERSEER_ALREADY_RUNNING', 'run() was already called in this process; call it once, from the entry script');
  }
  started = true;
  // Children and checks must not pass the marker on to processes the program starts.
  delete process.env[ROLE_ENV];
  if (role?.startsWith(ROLE_CHECK_PREFIX)) answerCheck(role.slice(ROLE_CHECK_PREFIX.length), resolved);
  // The child's side (drain, state, http) stays out of the master's memory.
  if (role === ROLE_CHILD) {
    isChild = true;
    return import('./core/child.js').then(({ runChild }) => runChild(resolved));
  }
  return runMaster(resolved);
}

/**
 * Asks the master for a graceful handoff to a fresh child (with noRestart: a graceful stop).
 * Call it from the program. Throws ERR_OVERSEER_NOT_A_CHILD outside an overseer child.
 */
export function restart(): void {
  if (isChild && process.connected) {
    process.send?.(childMessage({ type: 'restart' }));
    return;
  }
  if (inProcess) {
    createLog({ debug: false, noWarn: false }, 'in-process').warn('restart() does nothing without a master');
    return;
  }
  throw new OverseerError('ERR_OVERSEER_NOT_A_CHILD', 'restart() was called outside an overseer child; call it from the program that run() started');
}

function answerCheck(token: string, config: ResolvedConfig): never {
  const answer = JSON.stringify({ token, protocol: PROTOCOL, version: config.version ?? null });
  // Synchronous: the process exits right after, and stdout may be a pipe.
  fs.writeSync(1, `\n${CHECK_LINE_PREFIX}${answer}\n`);
  return exitProcess(0);
}

function whyMasterCannotRun(config: ResolvedConfig): string | undefined {
  if (process.platform === 'win32') return 'Windows is not supported by the master';
  if (!canBindHandles()) return 'this Node.js has no net._createServerHandle to bind sockets for children';
  if (!config.bundlePath && !process.argv[1]) return 'there is no entry script to fork (code from -e, stdin or a REPL); set config.bundlePath';
  if (process.send !== undefined && process.env.NODE_UNIQUE_ID !== undefined) return 'this process is a cluster worker';
  return undefined;
}

async function runMaster(config: ResolvedConfig): Promise<void> {
  const reason = whyMasterCannotRun(config);
  if (reason !== undefined) {
    if (config.required) throw new OverseerError('ERR_OVERSEER_UNSUPPORTED', `the master cannot run: ${reason} (config.required is true)`);
    inProcess = true;
    const { runInProcess } = await import('./core/in-process.js');
    return runInProcess(config, reason);
  }
  await startMaster(config);
  return new Promise<never>(() => {});
}
