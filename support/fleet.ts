/**
 * A fleet of real masters on this machine, all polling one release server through a
 * ManifestFetcher, for the fleet test and bench/fleet.ts. Each member is a master (with its
 * child) of a tiny served app, in its own folder, with a fixed instance id; its events come over
 * IPC. A step publishes a manifest and waits until every member has acted on it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bucketOf } from '../src/manifest/document.ts';
import type { OverseerEvent } from '../src/events.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A served app that polls through a ManifestFetcher (options in APP_MANIFEST, keys in APP_PUBLIC_KEYS). */
export function manifestBundle(version: string): string {
  const indexUrl = pathToFileURL(path.join(root, 'dist/src/index.js')).href;
  const manifestUrl = pathToFileURL(path.join(root, 'dist/fetchers/manifest.js')).href;
  return `// release ${version}
import http from 'node:http';
import { run } from ${JSON.stringify(indexUrl)};
import { ManifestFetcher } from ${JSON.stringify(manifestUrl)};
const env = process.env;
run({
  address: env.APP_ADDRESS ?? '127.0.0.1:0',
  version: ${JSON.stringify(version)},
  minFetchInterval: 50,
  verify: { publicKey: JSON.parse(env.APP_PUBLIC_KEYS) },
  fetcher: new ManifestFetcher(JSON.parse(env.APP_MANIFEST)),
  onEvent: (event) => process.send?.({ event }),
  async program(state) {
    const server = http.createServer((req, res) => res.end(JSON.stringify({ pid: process.pid, id: state.id, version: state.version ?? null })));
    await state.listen(server);
  },
});
`;
}

export interface Member {
  readonly id: string;
  readonly process: ChildProcess;
  readonly events: OverseerEvent[];
  port: number;
  /** The version it runs: its first, then the last one applied. */
  version: string;
}

export interface Fleet {
  readonly members: readonly Member[];
  /** Resolves when `done` holds for every member (checked on each event), or rejects after `timeoutMs`. */
  until(done: (member: Member) => boolean, timeoutMs: number, what: string): Promise<void>;
  stop(): Promise<void>;
}

export interface FleetOptions {
  readonly size: number;
  readonly manifestUrl: string;
  readonly publicKey: string;
  readonly firstVersion: string;
  /** Poll interval of each member, in ms (jittered ± 20 %). */
  readonly interval: number;
  readonly idPrefix?: string;
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-fleet-'));
  const members: Member[] = [];
  const wakers = new Set<() => void>();
  const wake = () => {
    for (const waker of [...wakers]) waker();
  };
  for (let index = 0; index < options.size; index++) {
    const id = `${options.idPrefix ?? 'node'}-${index}`;
    const bundle = path.join(dir, id, 'app.mjs');
    fs.mkdirSync(path.dirname(bundle));
    fs.writeFileSync(bundle, manifestBundle(options.firstVersion));
    const child = spawn(process.execPath, [bundle], {
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        APP_PUBLIC_KEYS: JSON.stringify([options.publicKey]),
        APP_MANIFEST: JSON.stringify({ http: { url: options.manifestUrl }, interval: options.interval, instanceId: id }),
      },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    child.stderr?.resume();
    const member: Member = { id, process: child, events: [], port: 0, version: options.firstVersion };
    child.on('message', (message: { event?: OverseerEvent }) => {
      const event = message.event;
      if (!event) return;
      member.events.push(event);
      if (event.type === 'master-started') member.port = Number(event.addresses[0]?.split(':').pop());
      if (event.type === 'upgrade-applied' && event.version !== undefined) member.version = event.version;
      wake();
    });
    child.once('exit', wake);
    members.push(member);
  }
  const fleet: Fleet = {
    members,
    until(done, timeoutMs, what) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const dead = members.find((member) => member.process.exitCode !== null || member.process.signalCode !== null);
          if (dead !== undefined) return finish(new Error(`fleet member ${dead.id} exited while waiting for ${what}`));
          if (members.every(done)) finish();
        };
        const timer = setTimeout(() => {
          const late = members.filter((member) => !done(member)).map((member) => member.id);
          finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; not yet: ${late.join(', ')}`));
        }, timeoutMs);
        const finish = (error?: Error) => {
          clearTimeout(timer);
          wakers.delete(check);
          if (error) reject(error);
          else resolve();
        };
        wakers.add(check);
        check();
      });
    },
    async stop() {
      await Promise.all(
        members.map(async (member) => {
          if (member.process.exitCode !== null || member.process.signalCode !== null) return;
          const exited = new Promise((resolve) => member.process.once('exit', resolve));
          member.process.kill('SIGTERM');
          const timer = setTimeout(() => member.process.kill('SIGKILL'), 15_000);
          await exited;
          clearTimeout(timer);
        }),
      );
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await fleet.until((member) => member.events.some((event) => event.type === 'child-ready'), 120_000, 'every member to serve');
  } catch (error) {
    await fleet.stop();
    throw error;
  }
  return fleet;
}

/** The members whose bucket for `version` is under `rollout`: exactly those that may take it. */
export function expectedTakers(ids: readonly string[], version: string, rollout: number): Set<string> {
  return new Set(ids.filter((id) => bucketOf(id, version) < rollout));
}

/** The binomial mean and standard deviation of how many of `n` take a release rolled out to `rollout` %. */
export function binomial(n: number, rollout: number): { readonly mean: number; readonly sd: number } {
  const p = rollout / 100;
  return { mean: n * p, sd: Math.sqrt(n * p * (1 - p)) };
}

/** Whether a member has acted on manifest `sequence` (accepted it, or refused it with `code`). */
export function sawManifest(member: Member, sequence: number): boolean {
  return member.events.some((event) => event.type === 'manifest-accepted' && event.sequence === sequence);
}

export function refused(member: Member, code: string, after: number): boolean {
  return member.events.some((event) => event.type === 'manifest-refused' && event.code === code && event.at >= after);
}

export interface StepReport {
  readonly step: string;
  readonly sequence: number;
  /** Members running the new release once the step settled. */
  readonly took: number;
  /** Exactly who should have, from the buckets (undefined for steps that change nothing). */
  readonly expected: number | undefined;
  /** Binomial expectation for the rollout, as a fleet of unknown ids would see it. */
  readonly binomialMean: number | undefined;
  readonly binomialSd: number | undefined;
  /** Members that took it but should not have, or should have and did not. */
  readonly wrong: readonly string[];
  readonly settleMs: number;
  /** Requests the release server answered during the step. */
  readonly requests: number;
  readonly bytesServed: number;
}

export interface ScenarioOptions {
  readonly fleet: Fleet;
  readonly publish: (sequence: number, offers: { readonly rollout?: number; readonly pulled?: boolean }, options?: { readonly expires?: string }) => Promise<void>;
  /** Puts an old manifest and its signature back (a replay). */
  readonly replay: (sequence: number) => Promise<void>;
  readonly requests: () => { readonly count: number; readonly bytes: number };
  readonly newVersion: string;
  readonly oldVersion: string;
  readonly steps: ReadonlyArray<'10%' | '50%' | '100%' | 'pull' | 'expire' | 'replay'>;
  readonly timeoutMs: number;
}

/**
 * Publishes sequence 2, 3, … one step at a time (10 % → 50 % → 100 % → pull → expire → replay of
 * the 10 % manifest) and waits for every member to act: the members whose bucket is under the
 * rollout run the new version, the others the old one; after a pull every member runs the old
 * one; an expired or replayed manifest is refused by every member, which keeps its version.
 */
export async function runScenario(options: ScenarioOptions): Promise<StepReport[]> {
  const { fleet, newVersion, oldVersion } = options;
  const ids = fleet.members.map((member) => member.id);
  const reports: StepReport[] = [];
  let sequence = 1;
  let firstRolloutSequence: number | undefined;
  for (const step of options.steps) {
    const before = options.requests();
    const started = Date.now();
    let expected: Set<string> | undefined;
    let rollout: number | undefined;
    let target = newVersion;
    if (step === '10%' || step === '50%' || step === '100%') {
      rollout = Number(step.slice(0, -1));
      sequence++;
      firstRolloutSequence ??= sequence;
      expected = expectedTakers(ids, newVersion, rollout);
      await options.publish(sequence, { rollout });
      const seq = sequence;
      const wanted = expected;
      await fleet.until((m) => sawManifest(m, seq) && (wanted.has(m.id) ? m.version === newVersion : true), options.timeoutMs, `step ${step}`);
    } else if (step === 'pull') {
      sequence++;
      expected = new Set(ids);
      target = oldVersion;
      await options.publish(sequence, { pulled: true });
      const seq = sequence;
      await fleet.until((m) => sawManifest(m, seq) && m.version === oldVersion, options.timeoutMs, 'the pull-back');
    } else if (step === 'expire') {
      sequence++;
      await options.publish(sequence, { rollout: 100 }, { expires: '2021-01-01T00:00:00Z' });
      await fleet.until((m) => refused(m, 'ERR_OVERSEER_MANIFEST_EXPIRED', started), options.timeoutMs, 'every member to refuse the expired manifest');
    } else {
      await options.replay(firstRolloutSequence ?? 2);
      await fleet.until((m) => refused(m, 'ERR_OVERSEER_MANIFEST_ROLLBACK', started), options.timeoutMs, 'every member to refuse the replayed manifest');
    }
    const settleMs = Date.now() - started;
    const after = options.requests();
    const running = fleet.members.filter((m) => m.version === target).map((m) => m.id);
    const wrong =
      expected === undefined ? [] : ids.filter((id) => expected.has(id) !== running.includes(id)).map((id) => `${id} (${fleet.members.find((m) => m.id === id)?.version})`);
    const spread = rollout === undefined ? undefined : binomial(ids.length, rollout);
    reports.push({
      step,
      sequence,
      took: expected === undefined ? fleet.members.filter((m) => m.version === newVersion).length : running.length,
      expected: expected?.size,
      binomialMean: spread?.mean,
      binomialSd: spread?.sd,
      wrong,
      settleMs,
      requests: after.count - before.count,
      bytesServed: after.bytes - before.bytes,
    });
  }
  return reports;
}
