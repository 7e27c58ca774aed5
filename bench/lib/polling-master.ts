/**
 * A master polling one route of a release server that serves the master's own bundle (1.0.0),
 * returned once that first poll is over (it installs nothing, but loads undici and reads the
 * release): where the upgrade, download and probation sections start from. The bundle's folder
 * is the contender's `dir`; the caller removes it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ReleaseServer } from '../../support/release-server.ts';
import { overseerAppSource } from './apps.ts';
import { startOverseer, type OverseerContender } from './contenders.ts';

export interface PollingMasterOptions {
  /** Poll interval and minFetchInterval, ms. */
  readonly interval?: number;
  /** Publish a `.sha256` sidecar and have the fetcher read it. */
  readonly sha256?: boolean;
  /** More run() options. */
  readonly options?: Record<string, unknown>;
  readonly execArgv?: readonly string[];
}

export async function startPollingMaster(server: ReleaseServer, route: string, settings: PollingMasterOptions = {}): Promise<OverseerContender> {
  const interval = settings.interval ?? 100;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-bench-'));
  const bundle = path.join(dir, 'app.mjs');
  fs.writeFileSync(bundle, overseerAppSource('1.0.0'));
  server.publish(route, fs.readFileSync(bundle), settings.sha256 ? { sha256: true } : undefined);
  const master = await startOverseer({
    bundle,
    fetcher: { kind: 'http', options: { url: server.url(route), ...(settings.sha256 ? { sha256Url: server.url(`${route}.sha256`) } : {}), interval } },
    options: { minFetchInterval: interval, ...settings.options },
    execArgv: [...(settings.execArgv ?? [])],
  });
  try {
    await master.waitEvent('upgrade-skipped', undefined, 30_000);
  } catch (error) {
    await master.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return master;
}
