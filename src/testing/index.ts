/**
 * `overseer/testing`: an app under a real master from its own test suite. startApp() runs a run()
 * app (or any command, as `overseer run` takes it) on a free loopback port; the TestApp restarts
 * it, publishes releases to it through a local release file it polls, reads its events, checks
 * its handoffs under load (the report of `overseer check`) and stops it and everything it started.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { OverseerEvent } from '../events.js';
import { CHECK_TIMEOUT_CAP, planCheck } from '../check/cli.js';
import { checkTarget, type CheckOptions, type FirstReady } from '../check/check.js';
import type { CheckReport } from '../check/report.js';
import { startTarget, type Exit, type Target, type TargetSpec } from '../check/target.js';

export type { CheckReport, RunReport, HandoffReport, FailedRequest, FailurePlace } from '../check/report.js';
export type { Diagnosis, DiagnosisCode } from '../check/report.js';
export type { FailureKind } from '../check/load.js';
export { formatReport } from '../check/format.js';
export type { Exit } from '../check/target.js';

export interface StartAppOptions {
  /** A run() app's entry script. Give this or `command`. */
  readonly script?: string;
  /** Arguments after the script. */
  readonly args?: readonly string[];
  /** Any executable, as `overseer run` takes it after `--` (`['python3', 'server.py']`). */
  readonly command?: readonly string[];
  /** `overseer run` options for `command` (`['--ready-delay', '500']`, `['-c', 'overseer.json']`); listeners move to a free loopback port. */
  readonly runArgs?: readonly string[];
  /** Added to the environment of the master and its children. */
  readonly env?: Readonly<Record<string, string>>;
  /** Where the master starts (and a command runs). @default process.cwd() */
  readonly cwd?: string;
  /** Drain deadline of an old child, ms. @default the app's own, at most 10000 */
  readonly terminateTimeout?: number;
  /** A new child must be ready within this, ms. @default the app's own, at most 10000 */
  readonly readyTimeout?: number;
  /**
   * Lets publish() send releases (run() apps only): the master runs a copy of the script, made
   * beside it so its imports resolve, and polls a local release file; stop() removes the copy
   * and everything upgrades left beside it. @default false
   */
  readonly releases?: boolean;
}

export interface CheckHandoffsOptions {
  /** Handoffs per run. @default 10 */
  readonly handoffs?: number;
  /** Requests per second. @default 500 */
  readonly rate?: number;
  /** Steady load before the first handoff, ms. @default 2000 */
  readonly durationMs?: number;
  /** The path to GET. @default '/' */
  readonly path?: string;
  /** The runs, in order. @default [true, false]: keep-alive on, then off */
  readonly keepAlive?: readonly boolean[];
}

type EventOf<T extends OverseerEvent['type']> = Extract<OverseerEvent, { type: T }>;

export interface TestApp {
  /** The master's pid. */
  readonly pid: number;
  readonly host: string;
  readonly port: number;
  /** `http://host:port` of the first listener. */
  readonly url: string;
  /** Every lifecycle event of the master so far. */
  readonly events: readonly OverseerEvent[];
  /** The last lines the master and its children wrote. */
  readonly output: readonly string[];
  /** The pid of the child serving now. */
  servingPid(): number | undefined;
  /** The first event of `type` from now on (or, with `since`, from that index of `events`) that `predicate` accepts; rejects at the deadline or when the master exits. */
  waitFor<T extends OverseerEvent['type']>(type: T, predicate?: (event: EventOf<T>) => boolean, options?: { timeoutMs?: number; since?: number }): Promise<EventOf<T>>;
  /** A ready-first handoff (SIGUSR2); resolves with its handoff-completed, rejects with the reason it failed. */
  restart(): Promise<EventOf<'handoff-completed'>>;
  /**
   * Publishes `release` (the new script's text or bytes) to the release file the master polls;
   * resolves once it is installed and serving, rejects when it is refused or rolled back.
   * Needs `releases: true`.
   */
  publish(release: string | Uint8Array, options?: { timeoutMs?: number }): Promise<EventOf<'upgrade-applied'>>;
  /** Load, handoffs, the verdict: the report `overseer check` prints. */
  checkHandoffs(options?: CheckHandoffsOptions): Promise<CheckReport>;
  /** Stops the master gracefully (SIGKILL after the drain deadline), then any child left. */
  stop(): Promise<Exit>;
}

function argvFor(options: StartAppOptions): string[] {
  const timeouts = [
    ...(options.terminateTimeout === undefined ? [] : ['--terminate-timeout', String(options.terminateTimeout)]),
    ...(options.readyTimeout === undefined ? [] : ['--ready-timeout', String(options.readyTimeout)]),
  ];
  if (options.script !== undefined && options.command === undefined) {
    // The app's own arguments go straight to the target, never through check's flag parser.
    return [...timeouts, path.resolve(options.cwd ?? process.cwd(), options.script)];
  }
  if (options.command !== undefined && options.script === undefined) {
    if (options.releases) throw new TypeError('overseer/testing: releases: true is for run() apps (script); a command takes a release source in runArgs (--fetch-file PATH)');
    return [...(options.runArgs ?? []), ...(options.cwd === undefined ? [] : ['--cwd', options.cwd]), ...timeouts, '--', ...options.command];
  }
  throw new TypeError('overseer/testing: startApp() takes a script (a run() app) or a command, one of the two');
}

/** Files an upgrade of `copy` may leave beside it: the copy itself, .previous, .lock, temps, the version floor. */
function removeBeside(copy: string): void {
  const dir = path.dirname(copy);
  const marker = path.basename(copy, path.extname(copy));
  for (const name of fs.readdirSync(dir)) {
    if (name.includes(marker)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

/** Starts the app under a master on a free loopback port; resolves once its first child is ready. */
export async function startApp(options: StartAppOptions): Promise<TestApp> {
  const argv = argvFor(options);
  const plan = await planCheck(argv);
  if (plan === 'help') throw new TypeError('overseer/testing: unexpected --help');
  let spec: TargetSpec = plan.spec;
  let copy: string | undefined;
  let releaseDir: string | undefined;
  let releaseFile: string | undefined;
  if (spec.kind === 'app') {
    let script = spec.script;
    if (options.releases) {
      const ext = path.extname(script);
      copy = path.join(path.dirname(script), `.${path.basename(script, ext)}.overseer-testing-${randomBytes(6).toString('hex')}${ext}`);
      fs.copyFileSync(script, copy);
      releaseDir = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'overseer-testing-'));
      releaseFile = path.join(releaseDir, `release${ext}`);
      script = copy;
    }
    spec = {
      ...spec, script, args: options.args ?? [],
      ...(options.env === undefined ? {} : { env: options.env }),
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      overrides: { ...spec.overrides, ...(releaseFile === undefined ? {} : { releaseFile, releaseInterval: 100 }) },
    };
  } else {
    spec = { ...spec, ...(options.env === undefined ? {} : { env: options.env }), ...(options.cwd === undefined ? {} : { cwd: options.cwd }) };
  }
  const cleanup = () => {
    if (copy !== undefined) removeBeside(copy);
    if (releaseDir !== undefined) fs.rmSync(releaseDir, { recursive: true, force: true });
  };
  let target: Target;
  try {
    target = startTarget(spec);
  } catch (error) {
    cleanup();
    throw error;
  }
  const { terminateTimeout, readyTimeout } = plan.options;
  const stopGrace = terminateTimeout + 5_000;
  let stopped: Promise<Exit> | undefined;
  const stop = () => {
    stopped ??= target.stop(stopGrace).finally(cleanup);
    return stopped;
  };
  const waitFor: TestApp['waitFor'] = async (type, predicate = () => true, { timeoutMs = 30_000, since } = {}) => {
    const found = await target.waitFor(type, predicate, timeoutMs, since ?? target.events.length);
    if (found !== undefined) return found;
    const why = target.exit ? `the master exited (${target.exit.signal ?? `code ${target.exit.code}`})` : `${timeoutMs} ms passed`;
    throw new Error(`overseer/testing: no ${type} event: ${why}; last output:\n${target.output.slice(-10).join('\n')}`);
  };
  let first: FirstReady;
  try {
    const address = await target.address(30_000);
    if (address === undefined) throw new Error(`overseer/testing: the master did not start; its output:\n${target.output.join('\n')}`);
    const ready = await target.waitFor('child-ready', () => true, readyTimeout + 5_000);
    if (ready === undefined) throw new Error(`overseer/testing: the first child was not ready within ${readyTimeout} ms; its output:\n${target.output.join('\n')}`);
    first = { address, readyMs: ready.bootMs };
  } catch (error) {
    await stop();
    throw error;
  }
  const { host, port } = first.address as { host: string; port: number };
  const serving = () => {
    const exited = new Set(target.events.flatMap((event) => (event.type === 'child-exited' ? [event.pid] : [])));
    return [...target.events].reverse().find((event): event is EventOf<'child-ready'> => event.type === 'child-ready' && !exited.has(event.pid))?.pid;
  };
  return {
    pid: target.pid,
    host,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    events: target.events,
    output: target.output,
    servingPid: serving,
    waitFor,
    async restart() {
      const since = target.events.length;
      target.signal('SIGUSR2');
      const outcome = await target.waitForEvent((event) => event.type === 'handoff-completed' || event.type === 'handoff-failed', readyTimeout + terminateTimeout + 15_000, since);
      if (outcome?.type === 'handoff-completed') return outcome;
      throw new Error(`overseer/testing: the handoff failed: ${outcome?.type === 'handoff-failed' ? `${outcome.code}: ${outcome.error}` : target.exit ? 'the master exited' : 'no answer in time'}`);
    },
    async publish(release, { timeoutMs = 30_000 } = {}) {
      if (releaseFile === undefined) throw new TypeError('overseer/testing: publish() needs startApp({ script, releases: true })');
      const since = target.events.length;
      // Written whole, then renamed: the poller never sees half a release.
      const temp = `${releaseFile}.${randomBytes(4).toString('hex')}.part`;
      fs.writeFileSync(temp, release);
      fs.renameSync(temp, releaseFile);
      // A known-id skip is a poll of the file this one replaced (a renamed file has a new inode, so
      // a new id): not this release's outcome, which is still to come.
      const outcome = await target.waitForEvent((event) => ['upgrade-applied', 'upgrade-rejected', 'upgrade-rolled-back'].includes(event.type)
        || (event.type === 'upgrade-skipped' && event.why !== 'known-id'), timeoutMs, since);
      if (outcome?.type !== 'upgrade-applied') {
        const why = outcome === undefined ? (target.exit ? 'the master exited' : `nothing happened within ${timeoutMs} ms`)
          : 'error' in outcome ? `${outcome.type}: ${outcome.error}` : outcome.type === 'upgrade-skipped' ? `upgrade-skipped (${outcome.why})` : outcome.type;
        throw new Error(`overseer/testing: the release was not installed: ${why}`);
      }
      // Installed; serving once its handoff completed (unless the app installs for the next restart).
      if (outcome.restart) await waitFor('handoff-completed', () => true, { timeoutMs: readyTimeout + terminateTimeout + 15_000, since });
      return outcome;
    },
    async checkHandoffs(check = {}) {
      const checkOptions: CheckOptions = { ...check, terminateTimeout, readyTimeout };
      return checkTarget(target, first, checkOptions);
    },
    stop,
  };
}

/** Starts the app, checks its handoffs under load, stops it: the report `overseer check` prints. */
export async function checkHandoffs(options: StartAppOptions & CheckHandoffsOptions): Promise<CheckReport> {
  const app = await startApp(options);
  try {
    return await app.checkHandoffs(options);
  } finally {
    await app.stop();
  }
}

/** The readyTimeout and terminateTimeout an app gets under test unless told otherwise (at most its own). */
export const TIMEOUT_CAP_MS = CHECK_TIMEOUT_CAP;
