/**
 * One check of a running target: open-loop load, a steady stretch, then N ready-first handoffs
 * (SIGUSR2 to the master), once with keep-alive on and once with it off. Each request is placed
 * by its time against the handoff's events (stop signal, old child's exit) so diagnose.ts can
 * say what went wrong and how to fix it.
 */
import { spawnSync } from 'node:child_process';
import type { OverseerEvent } from '../events.js';
import { KINDS, now, runLoad, type FailureKind, type LoadRecords } from './load.js';
import { summarize, totalFailures, type LatencySummary, type Window } from './summary.js';
import { diagnose } from './diagnose.js';
import { EARLY_IDLE_CLOSE_MS, type CheckReport, type FailedRequest, type FailurePlace, type HandoffReport, type RunReport } from './report.js';
import type { Target } from './target.js';

export interface CheckOptions {
  /** Requests per second. @default 500 */
  readonly rate?: number;
  /** Steady load before the first handoff, in ms (its p99 is the baseline). @default 5000 */
  readonly durationMs?: number;
  /** Handoffs per run. @default 10 */
  readonly handoffs?: number;
  /** Path each GET asks for. @default '/' */
  readonly path?: string;
  /** Runs, in order: keep-alive on, then off. @default [true, false] */
  readonly keepAlive?: readonly boolean[];
  /** A request not answered this long after its scheduled time fails as a timeout. @default 3000 */
  readonly requestTimeoutMs?: number;
  /** The master's drain deadline and readiness deadline, as the target runs them (for the report and the wait). */
  readonly terminateTimeout: number;
  readonly readyTimeout: number;
}

const WARMUP_MS = 500;
const GAP_MS = 200;
const TAIL_MS = 500;
/** A drain this close to terminateTimeout ran into it (a run() child may close everything and exit just before the SIGKILL). */
const DEADLINE_SLACK_MS = 50;
/** A failure seen this soon after the old child's exit event still counts as lost at its exit. */
const EXIT_SLACK_MS = 250;
/** A failure this long before the exit is a reset of a child still draining, not its exit. */
const BEFORE_EXIT_MS = 20;

/** A handoff as its events tell it, before the load's idle closes are matched to it. */
type Handoff = Omit<HandoffReport, 'idleClosedEarly'>;

const sleepOrExit = (target: Target, ms: number) => new Promise<void>((resolve) => {
  const timer = setTimeout(resolve, ms);
  void target.exited.then(() => {
    clearTimeout(timer);
    resolve();
  });
});

/** How long a bare Node.js takes to start and exit here, ms: the best of three, as a busy machine only adds. */
export function measureNodeBoot(): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    const started = performance.now();
    spawnSync(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

/** The pid serving now: the newest child that got ready and has not exited. */
function servingPid(events: readonly OverseerEvent[]): number | undefined {
  const exited = new Set(events.flatMap((event) => (event.type === 'child-exited' ? [event.pid] : [])));
  for (let index = events.length - 1; index >= 0; index--) {
    const event = events[index] as OverseerEvent;
    if (event.type === 'child-ready' && !exited.has(event.pid)) return event.pid;
  }
  return undefined;
}

async function handoff(target: Target, options: CheckOptions): Promise<Handoff> {
  const fromIndex = target.events.length;
  const oldPid = servingPid(target.events);
  const from = now();
  target.signal('SIGUSR2');
  const deadline = options.readyTimeout + options.terminateTimeout + 15_000;
  const outcome = await target.waitForEvent((event) => event.type === 'handoff-completed' || event.type === 'handoff-failed', deadline, fromIndex);
  const to = now();
  const since = target.events.slice(fromIndex);
  const draining = since.find((event) => event.type === 'child-draining' && event.pid === oldPid);
  const exited = since.find((event): event is Extract<OverseerEvent, { type: 'child-exited' }> => event.type === 'child-exited' && event.pid === oldPid);
  if (outcome?.type === 'handoff-completed') {
    return {
      ok: true, from, to: outcome.at, oldPid, newPid: outcome.to, readyMs: outcome.timings.readyMs, drainMs: outcome.timings.drainMs,
      drainAt: draining?.at, exitAt: exited?.at, drainTimedOut: exited?.signal === 'SIGKILL' || outcome.timings.drainMs >= options.terminateTimeout - DEADLINE_SLACK_MS,
    };
  }
  const error = outcome?.type === 'handoff-failed' ? { code: outcome.code, message: outcome.error }
    : target.exit !== undefined ? { code: 'master-exited', message: `the master exited (${target.exit.signal ?? `code ${target.exit.code}`}) during the handoff` }
      : { code: 'no-answer', message: `no handoff-completed or handoff-failed within ${deadline} ms of the restart signal` };
  const forked = since.find((event) => event.type === 'child-forked');
  return {
    ok: false, from, to: outcome?.at ?? to, oldPid, newPid: forked?.type === 'child-forked' ? forked.pid : undefined, readyMs: undefined, drainMs: undefined,
    drainAt: draining?.at, exitAt: exited?.at, drainTimedOut: false, error,
  };
}

/**
 * The handoff with the idle connections its old child closed right after its stop signal. A
 * connection is the old child's unless the new child gave its last answer (an app that does not
 * answer with its pid leaves the pid unknown: the time alone places it).
 */
function withIdleCloses(each: Handoff, records: LoadRecords): HandoffReport {
  const { drainAt, exitAt, newPid } = each;
  const idleClosedEarly = { draining: 0, atExit: 0 };
  if (drainAt === undefined) return { ...each, idleClosedEarly };
  for (const { at, pid } of records.idleClosed) {
    if (pid === newPid || at < drainAt || at > drainAt + EARLY_IDLE_CLOSE_MS) continue;
    if (exitAt !== undefined && at >= exitAt - BEFORE_EXIT_MS) idleClosedEarly.atExit++;
    else idleClosedEarly.draining++;
  }
  return { ...each, idleClosedEarly };
}

/** Where a failure seen at `seenAt` falls. */
function placeOf(seenAt: number, handoffs: readonly Handoff[]): FailurePlace {
  for (const each of handoffs) {
    if (each.drainAt !== undefined && each.exitAt !== undefined && seenAt >= each.drainAt && seenAt <= each.exitAt + EXIT_SLACK_MS) {
      if (seenAt < each.exitAt - BEFORE_EXIT_MS) return 'draining';
      return each.drainTimedOut ? 'killed' : 'at-exit';
    }
  }
  for (const each of handoffs) if (seenAt >= each.from && seenAt <= each.to + EXIT_SLACK_MS) return 'in-handoff';
  return 'outside';
}

function failedRequests(records: LoadRecords, handoffs: readonly Handoff[]): FailedRequest[] {
  const failed: FailedRequest[] = [];
  for (let index = 0; index < records.kind.length; index++) {
    const kind = records.kind[index] as number;
    if (kind === 0) continue;
    const seenAt = (records.scheduled[index] as number) + (records.latency[index] as number);
    failed.push({ kind: KINDS[kind] as FailureKind, place: placeOf(seenAt, handoffs), fresh: records.fresh[index] === 1 });
  }
  return failed;
}

async function runOnce(target: Target, address: { host: string; port: number }, keepAlive: boolean, options: CheckOptions): Promise<RunReport> {
  const load = runLoad({
    port: address.port, host: address.host, path: options.path ?? '/', keepAlive, rate: options.rate ?? 500,
    durationMs: 60 * 60_000, timeoutMs: options.requestTimeoutMs ?? 3000,
  });
  const handoffs: Handoff[] = [];
  let stoppedEarly: string | undefined;
  let records: LoadRecords;
  try {
    await sleepOrExit(target, WARMUP_MS + (options.durationMs ?? 2000));
    const asked = options.handoffs ?? 10;
    for (let index = 0; index < asked; index++) {
      if (target.exit !== undefined) {
        stoppedEarly = `the master exited (${target.exit.signal ?? `code ${target.exit.code}`})`;
        break;
      }
      const done = await handoff(target, options);
      handoffs.push(done);
      // One proof is enough: each more would cost a readyTimeout or a terminateTimeout.
      if (!done.ok) {
        stoppedEarly = `handoff ${index + 1} failed (${done.error?.code ?? 'unknown'})`;
        break;
      }
      if (done.drainTimedOut) {
        stoppedEarly = `handoff ${index + 1} drained until terminateTimeout`;
        break;
      }
      await sleepOrExit(target, GAP_MS);
    }
    await sleepOrExit(target, TAIL_MS);
  } finally {
    load.stop();
    records = await load.done;
  }
  const begin = records.startedAt + WARMUP_MS;
  const steady: Window = { from: begin, to: handoffs[0]?.from ?? records.endedAt };
  const windows: Window[] = handoffs.map(({ from, to }) => ({ from, to }));
  const total: LatencySummary = summarize(records);
  return {
    keepAlive,
    requests: total.requests,
    failed: totalFailures(total),
    failures: total.failures,
    steadyP99: summarize(records, [steady]).p99,
    windowP99: windows.length > 0 ? summarize(records, windows).p99 : Number.NaN,
    handoffs: handoffs.map((each) => withIdleCloses(each, records)),
    failedRequests: failedRequests(records, handoffs),
    examples: records.examples,
    ...(stoppedEarly === undefined ? {} : { stoppedEarly }),
    clientLagP99: records.clientLagP99,
    idleClosedOutside: records.idleClosed.filter(({ at }) => !windows.some(({ from, to }) => at >= from && at <= to + EXIT_SLACK_MS)).length,
  };
}

export interface FirstReady {
  readonly address: { host: string; port: number } | undefined;
  /** Fork → ready of the first child, when it got ready. */
  readonly readyMs: number | undefined;
}

/** Waits for the master's address and its first child's readiness (within readyTimeout and a margin). */
export async function waitUntilServing(target: Target, readyTimeout: number): Promise<FirstReady> {
  const address = await target.address(30_000);
  if (address === undefined) return { address: undefined, readyMs: undefined };
  const ready = await target.waitFor('child-ready', () => true, readyTimeout + 5_000);
  return { address, readyMs: ready?.bootMs };
}

/** Checks a target that is already serving (or that never got ready: then only the diagnosis). */
export async function checkTarget(target: Target, first: FirstReady, given: CheckOptions): Promise<CheckReport> {
  // A run() app's own deadlines when they are below the check's caps.
  const options: CheckOptions = { ...given, ...target.effective };
  const runs: RunReport[] = [];
  if (first.address !== undefined && first.readyMs !== undefined) {
    for (const keepAlive of options.keepAlive ?? [true, false]) {
      if (target.exit !== undefined) break;
      runs.push(await runOnce(target, first.address, keepAlive, options));
    }
  }
  const nodeBootMs = measureNodeBoot();
  const base = {
    target: target.describe,
    address: first.address === undefined ? '' : `${first.address.host}:${first.address.port}`,
    path: options.path ?? '/',
    rate: options.rate ?? 500,
    durationMs: options.durationMs ?? 2000,
    handoffsAsked: options.handoffs ?? 10,
    terminateTimeout: options.terminateTimeout,
    readyTimeout: options.readyTimeout,
    firstReadyMs: first.readyMs,
    nodeBootMs,
    runs,
  };
  const diagnoses = diagnose(base, target.events, target.output, target.exit);
  const failed = runs.reduce((sum, run) => sum + run.failed, 0);
  return { ...base, diagnoses, failed, ok: failed === 0 && !diagnoses.some((each) => each.severity === 'error') };
}
