/**
 * What the check concludes from idle keep-alive connections the old child closed at its stop
 * signal, on made-up reports: the fault is named from them alone (no request need lose the
 * race), but not from a server that closes idle connections at other times too, and not from
 * closes at an exit that lost requests without keep-alive as well.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diagnose } from '../../src/check/diagnose.ts';
import type { FailedRequest, HandoffReport, RunReport } from '../../src/check/report.ts';

const at = 1_000_000;

function handoff(idleClosedEarly: HandoffReport['idleClosedEarly']): HandoffReport {
  return {
    ok: true, from: at, to: at + 300, oldPid: 10, newPid: 11, readyMs: 150, drainMs: 40, drainAt: at + 160, exitAt: at + 200,
    drainTimedOut: false, idleClosedEarly,
  };
}

function run(keepAlive: boolean, handoffs: HandoffReport[], options: { idleClosedOutside?: number; failedRequests?: FailedRequest[] } = {}): RunReport {
  const failedRequests = options.failedRequests ?? [];
  return {
    keepAlive, requests: 1000, failed: failedRequests.length,
    failures: { refused: 0, reset: failedRequests.length, timeout: 0, status: 0, other: 0 },
    steadyP99: 2, windowP99: 5, handoffs, failedRequests, examples: {}, clientLagP99: 1,
    idleClosedOutside: options.idleClosedOutside ?? 0,
  };
}

function codes(runs: RunReport[]): string[] {
  const base = {
    target: 'app.mjs', address: '127.0.0.1:1', path: '/', rate: 500, durationMs: 2000, handoffsAsked: 2,
    terminateTimeout: 10_000, readyTimeout: 10_000, firstReadyMs: 150, nodeBootMs: 40, runs,
  };
  return diagnose(base, [], [], undefined).map((diagnosis) => diagnosis.code);
}

const none = { draining: 0, atExit: 0 };
const lostAtExit: FailedRequest = { kind: 'reset', place: 'at-exit', fresh: false };

test('idle connections closed while draining name reset-after-stop with no failed request', () => {
  assert.deepEqual(codes([run(true, [handoff({ draining: 2, atExit: 0 }), handoff(none)]), run(false, [handoff(none), handoff(none)])]), ['reset-after-stop']);
  assert.deepEqual(codes([run(true, [handoff(none), handoff(none)]), run(false, [handoff(none), handoff(none)])]), []);
});

test('a server that closes idle connections outside the handoffs too: its closes at a stop signal name nothing', () => {
  assert.deepEqual(codes([run(true, [handoff({ draining: 2, atExit: 0 })], { idleClosedOutside: 3 }), run(false, [handoff(none)])]), []);
});

test('closes right at the exit count only when the run without keep-alive lost nothing there', () => {
  assert.deepEqual(codes([run(true, [handoff({ draining: 0, atExit: 2 })]), run(false, [handoff(none)])]), ['reset-after-stop']);
  const both = codes([run(true, [handoff({ draining: 0, atExit: 2 })], { failedRequests: [lostAtExit] }), run(false, [handoff(none)], { failedRequests: [lostAtExit] })]);
  assert.deepEqual(both, ['lost-at-exit']);
});
