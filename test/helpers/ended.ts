/**
 * What a test file starts and must end: release servers and masters registered here are closed
 * and stopped (last first) when the file's tests are done, whether they passed or not.
 */
import { after } from 'node:test';
import { startReleaseServer, type ReleaseServer } from '../../support/release-server.ts';
import { startMaster, type RunningMaster, type StartOptions } from './master.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Runs `cleanup` when the file's tests are done. */
export function onDone(cleanup: () => Promise<void>): void {
  cleanups.push(cleanup);
}

/** A release server, closed when the file's tests are done. */
export async function releaseServer(options: Parameters<typeof startReleaseServer>[0] = {}): Promise<ReleaseServer> {
  const started = await startReleaseServer(options);
  onDone(() => started.close());
  return started;
}

/** A master of `bundle` with `env` added to its environment, stopped when the file's tests are done. */
export async function master(bundle: string, env: Record<string, string> = {}, options: Omit<StartOptions, 'env'> = {}): Promise<RunningMaster> {
  const started = await startMaster(bundle, { ...options, env });
  onDone(() => started.stop());
  return started;
}
