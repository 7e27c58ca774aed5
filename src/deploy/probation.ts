/**
 * The probation of a release under `overseer deploy`: once the `release` command's handoff
 * completed, the new child must hold for `duration` ms. It fails when that child exits without
 * being asked to (its app's `overseer run` master reports every exit), when the master itself
 * ends, or when the health probe fails `failures` times in a row (core/health-probe.ts, through
 * the address the app's master bound). go-live.ts then puts the previous release back.
 */
import { HealthProbe, probeTarget } from '../core/health-probe.js';
import type { ResolvedProbation } from '../core/config.js';
import type { ProbationCause, ProbationEvidence } from '../events.js';
import type { App, MasterNews } from './app.js';

export interface DeployProbationFailure {
  readonly cause: ProbationCause;
  readonly error: string;
  readonly evidence: ProbationEvidence;
}

/** Watches child `pid` of `app` for the probation; resolves with the failure, or undefined once it held. */
export function watchProbation(app: App, settings: ResolvedProbation, pid: number, addresses: readonly string[]): Promise<DeployProbationFailure | undefined> {
  return new Promise((resolve) => {
    let probe: HealthProbe | undefined;
    const done = (failure: DeployProbationFailure | undefined) => {
      clearTimeout(timer);
      probe?.stop();
      app.listeners.delete(listener);
      resolve(failure);
    };
    const timer = setTimeout(() => done(undefined), settings.duration);
    const listener = (news: MasterNews) => {
      if (news.kind === 'gone') {
        done({ cause: 'exit', error: `the app's overseer run process ended (${news.state}) during the probation`, evidence: {} });
        return;
      }
      const { event } = news;
      if (event.type === 'child-exited' && event.pid === pid && !event.expected) {
        done({ cause: 'exit', error: `child ${pid} exited (${event.signal ?? `code ${event.code}`}) during its probation`, evidence: { exitCode: event.code, signal: event.signal } });
      }
    };
    app.listeners.add(listener);
    const address = settings.probe === undefined ? undefined : addresses[settings.probe.listener];
    if (settings.probe && address !== undefined) {
      const { path, interval, failures, timeout } = settings.probe;
      probe = new HealthProbe({
        target: probeTarget({ address, kind: address.startsWith('unix:') ? 'unix' : 'tcp' }), path, interval, failures, timeout,
        onFailed: (count, last) => done({ cause: 'probe', error: `${count} health probes in a row failed (the last: ${last})`, evidence: { probeFailures: count, probeError: last } }),
      });
      probe.start();
    }
  });
}
