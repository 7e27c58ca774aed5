/**
 * What a check's numbers mean: each failure pattern `overseer check` recognises, named with its
 * evidence and the fix. Patterns come from where failed requests fell against the handoffs
 * (check.ts) and from the master's events.
 */
import type { OverseerEvent } from '../events.js';
import { EARLY_IDLE_CLOSE_MS, type CheckReport, type Diagnosis, type FailedRequest, type RunReport } from './report.js';
import type { Exit } from './target.js';

type Base = Omit<CheckReport, 'diagnoses' | 'failed' | 'ok'>;

/** Readiness slower than this (and than SLOW_READY_FACTOR × a bare node's boot) earns a warning. */
const SLOW_READY_MS = 1000;
const SLOW_READY_FACTOR = 5;

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;
const mode = (run: RunReport) => `keep-alive ${run.keepAlive ? 'on' : 'off'}`;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

/** Failed requests of every run that `keep` accepts, counted per run as "N (keep-alive on)". */
function countPer(runs: readonly RunReport[], keep: (failure: FailedRequest, run: RunReport) => boolean): { total: number; text: string } {
  const parts: string[] = [];
  let total = 0;
  for (const run of runs) {
    const count = run.failedRequests.filter((failure) => keep(failure, run)).length;
    if (count === 0) continue;
    total += count;
    parts.push(`${count} with ${mode(run)}`);
  }
  return { total, text: parts.join(', ') };
}

function outputTail(output: readonly string[]): string {
  const lines = output.filter((line) => line.trim() !== '').slice(-5);
  return lines.length === 0 ? '' : `; its last output:\n      ${lines.join('\n      ')}`;
}

function readiness(base: Base, events: readonly OverseerEvent[], output: readonly string[], exit: Exit | undefined): Diagnosis[] {
  const found: Diagnosis[] = [];
  if (base.address === '') {
    found.push({
      code: 'master-exited', severity: 'error', title: 'The master did not start',
      detail: `no master-started event${exit ? ` (the master exited: ${exit.signal ?? `code ${exit.code}`})` : ''}${outputTail(output)}`,
      fix: 'run the same command with `overseer run` to see its error; a run() app must call run() from its entry script',
    });
    return found;
  }
  const failedStarts = events.filter((event): event is Extract<OverseerEvent, { type: 'handoff-failed' }> => event.type === 'handoff-failed');
  const firstNeverReady = base.firstReadyMs === undefined;
  const notReady = failedStarts.filter((event) => event.code === 'ERR_OVERSEER_READY_TIMEOUT');
  const crashed = failedStarts.filter((event) => event.code !== 'ERR_OVERSEER_READY_TIMEOUT');
  const firstExit = events.find((event): event is Extract<OverseerEvent, { type: 'child-exited' }> => event.type === 'child-exited');
  const firstCrashed = firstNeverReady && firstExit !== undefined && firstExit.signal !== 'SIGTERM' && firstExit.signal !== 'SIGKILL' && !events.some((event) => event.type === 'child-draining');
  if ((firstNeverReady && !firstCrashed) || notReady.length > 0) {
    const which = firstNeverReady ? 'The first child' : `${plural(notReady.length, 'new child')} of a handoff`;
    found.push({
      code: 'never-ready', severity: 'error', title: 'A child never reported ready',
      detail: `${which} did not report ready within readyTimeout (${base.readyTimeout} ms)${firstNeverReady ? ', so nothing could be checked' : '; the old child kept serving'}${outputTail(output)}`,
      fix: 'a run() app is ready when program() resolves: make sure it resolves once the server listens (no await on something that never settles); '
        + 'a command says READY=1 on the pipe in $OVERSEER_READY_FD once it listens (`echo READY=1 >&$OVERSEER_READY_FD`), or run it with --ready-delay MS; '
        + 'a program that really needs longer gets a larger --ready-timeout',
    });
  }
  if (firstCrashed || crashed.length > 0) {
    const what = firstCrashed ? `the first child exited (${firstExit?.signal ?? `code ${firstExit?.code}`}) before it was ready`
      : crashed.map((event) => event.error).slice(0, 2).join('; ');
    found.push({
      code: 'child-failed', severity: 'error', title: 'A child failed before it was ready',
      detail: `${what}${outputTail(output)}`,
      fix: 'the program throws or exits while it starts: run it by hand (`node app.mjs`, or the command) and read its error',
    });
  }
  const readyTimes = base.runs.flatMap((run) => run.handoffs.flatMap((each) => (each.readyMs === undefined ? [] : [each.readyMs])));
  if (readyTimes.length > 0) {
    const typical = median(readyTimes);
    if (typical > SLOW_READY_MS && typical > SLOW_READY_FACTOR * base.nodeBootMs) {
      found.push({
        code: 'slow-ready', severity: 'warning', title: 'Slow readiness',
        detail: `a new child took ${Math.round(typical)} ms (median) from the restart signal to ready, where a bare node process starts and exits in ${Math.round(base.nodeBootMs)} ms; `
          + `every handoff and deploy waits that long (the old child serves meanwhile), and readyTimeout is ${base.readyTimeout} ms`,
        fix: 'report ready as soon as the server listens and do slow work (caches, connections) after, or lazily; bundle the app to cut module loading',
      });
    }
  }
  return found;
}

function requests(base: Base): Diagnosis[] {
  const found: Diagnosis[] = [];
  const { runs } = base;
  const atDrain = (failure: FailedRequest) => (failure.place === 'draining' || failure.place === 'at-exit') && (failure.kind === 'reset' || failure.kind === 'other');
  // Without keep-alive there is no idle connection to close: a program that loses requests only
  // with keep-alive on closes idle connections too early; one that loses them either way exits
  // before its in-flight requests finish. A reset well before the exit is the former anyway.
  const offRun = runs.find((run) => !run.keepAlive);
  const onlyKeepAlive = offRun !== undefined && !offRun.failedRequests.some(atDrain);
  const isAfterStop = (failure: FailedRequest, run: RunReport) => run.keepAlive && atDrain(failure) && (onlyKeepAlive || failure.place === 'draining');
  const afterStop = countPer(runs, isAfterStop);
  // The same fault seen directly: idle connections closed at the stop signal, which a request
  // only sometimes runs into. Those closed right at the exit count as for resets: when the run
  // without keep-alive lost nothing there. A server that closes idle connections at other times
  // too (a short keepAliveTimeout) gives no such sign.
  const closing = runs.filter((run) => run.keepAlive && run.idleClosedOutside === 0).flatMap((run) => run.handoffs)
    .map(({ idleClosedEarly }) => idleClosedEarly.draining + (onlyKeepAlive ? idleClosedEarly.atExit : 0));
  const idleClosed = closing.reduce((sum, count) => sum + count, 0);
  if (afterStop.total > 0 || idleClosed > 0) {
    const evidence = [
      ...(afterStop.total > 0 ? [`${plural(afterStop.total, 'request')} (${afterStop.text}) were reset while the old child drained, before it exited`] : []),
      ...(idleClosed > 0
        ? [`in ${closing.filter((count) => count > 0).length} of ${plural(closing.length, 'handoff')} with keep-alive the old child closed `
          + `${plural(idleClosed, 'idle connection')} within ${EARLY_IDLE_CLOSE_MS} ms of its stop signal`
          + (afterStop.total > 0 ? '' : ' (no request of this check was sent on one in that instant; a client that does is reset)')]
        : []),
    ];
    found.push({
      code: 'reset-after-stop', severity: 'error', title: 'Resets right after the stop signal',
      detail: `${evidence.join('; ')}: `
        + 'it closes idle keep-alive connections at once, as plain server.close() does since Node 19, while clients are about to reuse them',
      fix: 'close only the listener, answer the requests still coming with `Connection: close`, and close idle connections a second later: '
        + 'a run() app gets this from state.listen(server) (or server.listen(state.listener)) and must not call server.close() itself; '
        + 'elsewhere use net.Server.prototype.close.call(server), then server.closeIdleConnections() after a second (docs/command.md, "Draining")',
    });
  }
  const atExit = countPer(runs, (failure, run) => atDrain(failure) && !isAfterStop(failure, run));
  if (atExit.total > 0) {
    found.push({
      code: 'lost-at-exit', severity: 'error', title: 'Requests lost at exit',
      detail: `${plural(atExit.total, 'request')} (${atExit.text}) were cut off as the old child exited: it exits (or closes its connections) before its in-flight requests finish`,
      fix: 'on the stop signal stop accepting, let the requests in flight finish, and exit once the server has closed (its close callback), '
        + 'not from the signal handler with process.exit() or an exit right after close(); run() apps: use state.listen(server) and let overseer exit',
    });
  }
  const drains = runs.flatMap((run) => run.handoffs.filter((each) => each.drainTimedOut).map((each) => ({ run, each })));
  if (drains.length > 0) {
    const pids = drains.map(({ each }) => each.oldPid).join(', ');
    const killed = countPer(runs, (failure) => failure.place === 'killed');
    found.push({
      code: 'drain-timeout', severity: 'error', title: 'A drain reached terminateTimeout',
      detail: `the old child (pid ${pids}) was still running ${base.terminateTimeout} ms after it was told to stop, and was killed (SIGKILL); `
        + `until then a deploy cannot finish, and whatever it was doing is cut off${killed.total > 0 ? ` (${plural(killed.total, 'request')} here: ${killed.text})` : ''}`,
      fix: 'something keeps the process alive after the stop signal: a timer (setInterval), a database or HTTP connection pool, a websocket or other long connection, '
        + 'a worker, or no handler for the stop signal at all. Close them on state.shutdown (run() apps) or on SIGTERM, and exit once the server has closed',
    });
  }
  const refused = countPer(runs, (failure) => failure.kind === 'refused');
  if (refused.total > 0) {
    found.push({
      code: 'refused', severity: 'error', title: 'Connections refused',
      detail: `${plural(refused.total, 'connection')} (${refused.text}) were refused: nothing held the listening socket, so the master was gone`,
      fix: 'see why the master exited in its output (it exits when its child exits on its own without respawn)',
    });
  }
  const timeouts = countPer(runs, (failure) => failure.kind === 'timeout');
  if (timeouts.total > 0) {
    found.push({
      code: 'timeout', severity: 'error', title: 'Requests never answered',
      detail: `${plural(timeouts.total, 'request')} (${timeouts.text}) got no answer in time`,
      fix: 'a child accepted them and never answered: a handler that hangs, a drain that stops answering before it closes its connections, '
        + `or a machine too busy for ${base.rate} req/s (try a lower --rate)`,
    });
  }
  const statuses = countPer(runs, (failure) => failure.kind === 'status');
  if (statuses.total > 0) {
    const inSteady = countPer(runs, (failure) => failure.kind === 'status' && failure.place === 'outside');
    const example = runs.map((run) => run.examples.status).find((text) => text !== undefined) ?? '';
    found.push({
      code: 'non-2xx', severity: 'error', title: 'Answers that were not 2xx',
      detail: `${plural(statuses.total, 'answer')} (${statuses.text}) had a non-2xx status (first: ${example})`,
      fix: inSteady.total > 0 ? `${base.path} does not answer 2xx even without a handoff: give a path that does with --url PATH`
        : 'the app answers errors while it hands off (a 503 while draining is a failed request to its client): keep answering normally until the listener is closed',
    });
  }
  const other = (place: FailedRequest['place']) => countPer(runs, (failure) => failure.place === place && (failure.kind === 'reset' || failure.kind === 'other'));
  const inHandoff = other('in-handoff');
  if (inHandoff.total > 0) {
    found.push({
      code: 'failed-in-handoff', severity: 'error', title: 'Requests failed during a handoff, before the old child was told to stop',
      detail: `${plural(inHandoff.total, 'request')} (${inHandoff.text}) failed while the new child started`,
      fix: 'the new child breaks connections it accepts before it is ready, or the old one reacts to the new child: report ready only once the server answers',
    });
  }
  const outside = other('outside');
  if (outside.total > 0) {
    found.push({
      code: 'failed-outside-handoffs', severity: 'error', title: 'Requests failed outside any handoff',
      detail: `${plural(outside.total, 'request')} (${outside.text}) failed in steady load`,
      fix: `the app fails at ${base.rate} req/s without any handoff: try a lower --rate, or see its output`,
    });
  }
  return found;
}

export function diagnose(base: Base, events: readonly OverseerEvent[], output: readonly string[], exit: Exit | undefined): Diagnosis[] {
  return [...readiness(base, events, output, exit), ...requests(base)];
}
