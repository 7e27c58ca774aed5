/**
 * The probation of a new build: after an upgrade's handoff, the master watches the child that
 * serves it for `duration` ms. It fails on an exit the master did not ask for, on a 5xx ratio
 * over `maxErrorRatio` (once `minRequests` answers were counted, by the child itself, see
 * response-counter.ts), on the program's own state.reportUnhealthy(), or on `failures` failed
 * health probes in a row. It passes when the time is up or on state.reportHealthy(). What a
 * failure leads to (the rollback) is the upgrader's call; this only gives the verdict, with
 * the evidence.
 */
import type { ResolvedProbation } from './config.js';
import type { EventBody, Log, ProbationCause, ProbationEvidence, ProbationWatch } from '../events.js';
import type { HealthReport } from './launch/launcher.js';
import type { ListenerInfo, ResponseCounts } from '../protocol.js';
import { HealthProbe, probeTarget } from './health-probe.js';

export type ProbationVerdict =
  | { readonly outcome: 'passed' }
  | { readonly outcome: 'failed'; readonly cause: ProbationCause; readonly error: string; readonly evidence: ProbationEvidence }
  /** The master is shutting down: no verdict, nothing to roll back. */
  | { readonly outcome: 'stopped' };

export interface ProbationStatus {
  readonly pid: number;
  readonly sha256: string;
  readonly startedAt: number;
  readonly endsAt: number;
  readonly msLeft: number;
}

export interface ProbationOptions {
  readonly settings: ResolvedProbation;
  /** The serving child of the new build. */
  readonly pid: number;
  readonly sha256: string;
  readonly listeners: readonly ListenerInfo[];
  /** The child reports its responses and verdicts (a run() child; not an exec'd command). */
  readonly reports: boolean;
  readonly emit: (event: EventBody) => void;
  readonly log: Log;
}

function total(counts: ResponseCounts): number {
  return counts['1xx'] + counts['2xx'] + counts['3xx'] + counts['4xx'] + counts['5xx'];
}

/** A child's counts, taken as numbers whatever it sent. */
function sane(counts: ResponseCounts): ResponseCounts {
  const of = (value: unknown) => (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0);
  return { '1xx': of(counts['1xx']), '2xx': of(counts['2xx']), '3xx': of(counts['3xx']), '4xx': of(counts['4xx']), '5xx': of(counts['5xx']) };
}

export class Probation {
  readonly #options: ProbationOptions;
  readonly done: Promise<ProbationVerdict>;
  readonly startedAt = Date.now();
  readonly endsAt: number;
  #resolve!: (verdict: ProbationVerdict) => void;
  #pid: number;
  #over = false;
  readonly #timer: NodeJS.Timeout;
  readonly #probe: HealthProbe | undefined;
  /** Counts of children of this build that served during the probation and are gone (a restart). */
  #earlier: ResponseCounts | undefined;
  #counts: ResponseCounts | undefined;

  constructor(options: ProbationOptions) {
    this.#options = options;
    this.#pid = options.pid;
    const { settings, listeners } = options;
    this.endsAt = this.startedAt + settings.duration;
    this.done = new Promise((resolve) => (this.#resolve = resolve));
    const watching: ProbationWatch[] = ['exit', ...(options.reports ? (['responses', 'verdict'] as const) : [])];
    const probe = settings.probe;
    const listener = probe === undefined ? undefined : listeners[probe.listener];
    if (probe && listener) {
      watching.push('probe');
      this.#probe = new HealthProbe({
        target: probeTarget(listener), path: probe.path, interval: probe.interval, failures: probe.failures, timeout: probe.timeout,
        onFailed: (failures, last) => this.#fail('probe', `${failures} health probes in a row failed (the last: ${last})`, { probeFailures: failures, probeError: last }),
      });
    } else if (probe) {
      options.log.warn(`probation.probe.listener ${probe.listener} names no listener (there are ${listeners.length}); probing nothing`);
    }
    options.emit({ type: 'probation-started', pid: this.#pid, sha256: options.sha256, durationMs: settings.duration, endsAt: this.endsAt, watching });
    this.#timer = setTimeout(() => this.#pass(false), settings.duration);
    this.#probe?.start();
  }

  get pid(): number {
    return this.#pid;
  }

  get active(): boolean {
    return !this.#over;
  }

  status(now = Date.now()): ProbationStatus {
    return { pid: this.#pid, sha256: this.#options.sha256, startedAt: this.startedAt, endsAt: this.endsAt, msLeft: Math.max(0, this.endsAt - now) };
  }

  /** A restart during probation: a new child of the same build serves now; it is watched instead. */
  follow(pid: number): void {
    if (this.#over || pid === this.#pid) return;
    if (this.#counts) this.#earlier = this.#sum(this.#counts);
    this.#counts = undefined;
    this.#pid = pid;
  }

  /** The serving child exited, and the master did not ask it to. */
  exited(pid: number, code: number | null, signal: string | null): void {
    if (pid !== this.#pid) return;
    this.#fail('exit', `child ${pid} exited (${signal ?? `code ${code}`}) during its probation`, { exitCode: code, signal });
  }

  report(pid: number, report: HealthReport): void {
    if (this.#over || pid !== this.#pid) return;
    if (report.type === 'health') {
      if (report.healthy) this.#pass(true);
      else this.#fail('unhealthy', `the program reported itself unhealthy: ${report.reason ?? '(no reason given)'}`, { reason: report.reason ?? '' });
      return;
    }
    this.#counts = sane(report.counts);
    const counts = this.#sum(this.#counts);
    const answers = total(counts);
    const { maxErrorRatio, minRequests } = this.#options.settings;
    const ratio = answers === 0 ? 0 : counts['5xx'] / answers;
    if (answers >= minRequests && ratio > maxErrorRatio) {
      this.#fail('error-ratio', `${counts['5xx']} of ${answers} answers were 5xx (${(ratio * 100).toFixed(1)}%, over maxErrorRatio ${maxErrorRatio})`, {});
    }
  }

  /** Shutdown: ends without a verdict. */
  stop(): void {
    this.#end({ outcome: 'stopped' });
  }

  #sum(counts: ResponseCounts): ResponseCounts {
    const earlier = this.#earlier;
    if (!earlier) return counts;
    return {
      '1xx': earlier['1xx'] + counts['1xx'], '2xx': earlier['2xx'] + counts['2xx'], '3xx': earlier['3xx'] + counts['3xx'],
      '4xx': earlier['4xx'] + counts['4xx'], '5xx': earlier['5xx'] + counts['5xx'],
    };
  }

  /** What was seen so far: the responses and the ratio, the probe's state. */
  #evidence(extra: ProbationEvidence): ProbationEvidence {
    const counts = this.#counts ? this.#sum(this.#counts) : this.#earlier;
    const answers = counts ? total(counts) : 0;
    const probe = this.#probe?.state;
    return {
      ...(counts ? { responses: counts, errorRatio: answers === 0 ? 0 : counts['5xx'] / answers } : {}),
      ...(probe && probe.failures > 0 ? { probeFailures: probe.failures, probeError: probe.last } : {}),
      ...extra,
    };
  }

  #pass(early: boolean): void {
    if (this.#over) return;
    const { pid, sha256 } = { pid: this.#pid, sha256: this.#options.sha256 };
    const evidence = this.#evidence({});
    this.#end({ outcome: 'passed' });
    this.#options.emit({ type: 'probation-passed', pid, sha256, durationMs: Date.now() - this.startedAt, early, evidence });
  }

  #fail(cause: ProbationCause, error: string, extra: ProbationEvidence): void {
    if (this.#over) return;
    const evidence = this.#evidence(extra);
    const pid = this.#pid;
    this.#end({ outcome: 'failed', cause, error, evidence });
    this.#options.emit({ type: 'probation-failed', pid, sha256: this.#options.sha256, cause, error, evidence });
    this.#options.log.warn(`the new build (sha256 ${this.#options.sha256}) failed its probation: ${error}`);
  }

  #end(verdict: ProbationVerdict): void {
    if (this.#over) return;
    this.#over = true;
    clearTimeout(this.#timer);
    this.#probe?.stop();
    this.#resolve(verdict);
  }
}
