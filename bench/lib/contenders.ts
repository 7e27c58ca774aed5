/**
 * The contenders, each started on a port and restartable the way its users restart it: bare
 * `node` (kill and start again), Node's cluster module, overseer (SIGUSR2 → ready-first handoff),
 * a stop-then-start master (bench-only emulation) and PM2 in cluster mode (`pm2 reload`).
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { OverseerEvent } from '../../src/events.ts';
import { writeOverseerApp } from './apps.ts';
import { now } from './clock.ts';
import { internalModule } from './internal.ts';
import type { Pm2 } from './pm2.ts';
import { benchDir, freePort, onExit, pinned, spawnTracked, stopChild, trackPid, tryCpuMs, waitGone } from './procs.ts';
import type { Window } from './stats.ts';

export interface Restart extends Window {
  /** Named sub-windows (boot, drain, down…), each inside [from, to]. */
  readonly phases: Readonly<Record<string, Window>>;
  /** Extra facts about this restart (timings from events, CPU of the booting child). */
  readonly facts: Readonly<Record<string, number>>;
}

export interface Contender {
  readonly name: string;
  readonly port: number;
  /** Every process of the contender now (master, children, daemon). */
  pids(): number[];
  /** The process that answers requests now. */
  servingPid(): number;
  restart?(): Promise<Restart>;
  stop(): Promise<void>;
}

const node = process.execPath;
const app = (name: string) => path.join(benchDir, 'apps', name);

interface Tagged {
  readonly at: number;
  readonly type: string;
  readonly pid?: number;
  readonly [key: string]: unknown;
}

/** A process that reports events over IPC, with waitFor() on them. */
class Reporter {
  readonly events: Tagged[] = [];
  readonly #waiters = new Set<() => void>();
  readonly child: ChildProcess;
  stderr = '';

  constructor(child: ChildProcess, mapMessage: (message: unknown) => Tagged | undefined) {
    this.child = child;
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.stderr.length < 20_000) this.stderr += chunk;
    });
    child.on('message', (message: unknown) => {
      const event = mapMessage(message);
      if (!event) return;
      this.events.push(event);
      for (const waiter of [...this.#waiters]) waiter();
    });
    child.once('exit', () => {
      for (const waiter of [...this.#waiters]) waiter();
    });
  }

  waitFor(match: (event: Tagged) => boolean, what: string, timeoutMs = 20_000, from = 0): Promise<Tagged> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.slice(from).find(match);
        if (found) {
          cleanup();
          resolve(found);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          cleanup();
          reject(new Error(`process exited before ${what}\n${this.stderr}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${what} within ${timeoutMs} ms\n${this.stderr}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }
}

export interface StartOptions {
  /** CPU list for taskset, e.g. '0'; unpinned when undefined. */
  readonly cpus?: string | undefined;
  readonly port?: number;
}

/** `node bare.cjs`; restart = SIGTERM (no handler: it dies at once), then start a new one. */
export async function startBare(options: StartOptions & { script?: string; name?: string; env?: Record<string, string> } = {}): Promise<Contender> {
  const port = options.port ?? (await freePort());
  let child: ChildProcess;
  const launch = async (): Promise<ChildProcess> => {
    const [command, args] = pinned(options.cpus, node, [app(options.script ?? 'bare.cjs')]);
    const started = spawnTracked(command, args, { env: { ...process.env, ...options.env, PORT: String(port) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      started.once('message', () => resolve());
      started.once('exit', (code) => reject(new Error(`bare server exited (${code}) before it listened`)));
    });
    return started;
  };
  child = await launch();
  return {
    name: options.name ?? 'bare node',
    port,
    pids: () => [child.pid ?? -1],
    servingPid: () => child.pid ?? -1,
    async restart() {
      const from = now();
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
      const downAt = now();
      child = await launch();
      const to = now();
      return { from, to, phases: { down: { from, to: downAt }, boot: { from: downAt, to } }, facts: { bootMs: to - downAt } };
    },
    stop: () => stopChild(child),
  };
}

/** Node's cluster module, one worker (or `workers`), scheduling 'rr' or 'none'. */
export async function startCluster(sched: 'rr' | 'none', options: StartOptions & { workers?: number } = {}): Promise<Contender> {
  const port = options.port ?? (await freePort());
  const [command, args] = pinned(options.cpus, node, [app('cluster.cjs')]);
  const child = spawnTracked(command, args, {
    env: { ...process.env, PORT: String(port), BENCH_SCHED: sched, BENCH_WORKERS: String(options.workers ?? 1) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const workers: number[] = [];
  await new Promise<void>((resolve, reject) => {
    child.on('message', (message: { pid?: number }) => {
      if (typeof message.pid === 'number') {
        workers.push(message.pid);
        trackPid(message.pid);
      }
      if (workers.length === (options.workers ?? 1)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`cluster primary exited (${code})`)));
  });
  return {
    name: `cluster ${sched === 'rr' ? 'SCHED_RR' : 'SCHED_NONE'}`,
    port,
    pids: () => [child.pid ?? -1, ...workers],
    servingPid: () => workers[0] ?? -1,
    async stop() {
      await stopChild(child);
      await waitGone(workers);
    },
  };
}

export interface IdleCollection {
  readonly durationMs: number;
  readonly cpuMs: number;
  readonly rssBefore: number;
  readonly rssAfter: number;
  /** When it reached the runner (performance.now()). */
  readonly receivedAt: number;
}

export interface OverseerContender extends Contender {
  readonly masterPid: number;
  readonly events: OverseerEvent[];
  readonly reporter: Reporter;
  readonly dir: string;
  /** The master's own memory and CPU, asked over IPC (with a GC first when gc is true and the master has --expose-gc). */
  usage(gc?: boolean): Promise<{ memory: NodeJS.MemoryUsage; cpu: NodeJS.CpuUsage }>;
  /** The master's idle collections so far (src/core/idle-gc.ts), each as published on its channel. */
  readonly idleCollections: readonly IdleCollection[];
  /** Resolves with the first idle collection after the `after`-th one, or undefined at the deadline. */
  waitIdleCollection(after: number, timeoutMs: number): Promise<IdleCollection | undefined>;
  /** Kills the serving child with `signal`; resolves when a new child is ready (needs respawn). */
  killChild(signal: NodeJS.Signals): Promise<Restart>;
  waitEvent<T extends OverseerEvent['type']>(type: T, match?: (event: Extract<OverseerEvent, { type: T }>) => boolean, timeoutMs?: number, fromIndex?: number): Promise<Extract<OverseerEvent, { type: T }>>;
}

export interface OverseerStartOptions extends StartOptions {
  readonly options?: Record<string, unknown>;
  readonly fetcher?: { kind: string; options: Record<string, unknown> };
  readonly version?: string;
  readonly execArgv?: readonly string[];
  readonly env?: Record<string, string>;
  /** Use this bundle instead of writing one. */
  readonly bundle?: string;
}

/** overseer: the master runs a bundle in a temp dir; restart = SIGUSR2, a ready-first handoff. */
export async function startOverseer(options: OverseerStartOptions = {}): Promise<OverseerContender> {
  const port = options.port ?? (await freePort());
  const dir = options.bundle ? path.dirname(options.bundle) : fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-bench-'));
  const bundle = options.bundle ?? writeOverseerApp(dir, options.version ?? '1.0.0');
  if (!options.bundle) onExit(() => fs.rmSync(dir, { recursive: true, force: true }));
  const [command, args] = pinned(options.cpus, node, [...(options.execArgv ?? []), bundle]);
  const child = spawnTracked(command, args, {
    cwd: dir,
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      BENCH_ADDRESS: `127.0.0.1:${port}`,
      BENCH_OPTIONS: JSON.stringify(options.options ?? {}),
      ...(options.fetcher ? { BENCH_FETCHER: JSON.stringify(options.fetcher) } : {}),
      ...options.env,
    },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  const usageWaiters: Array<(value: { memory: NodeJS.MemoryUsage; cpu: NodeJS.CpuUsage }) => void> = [];
  const idleCollections: IdleCollection[] = [];
  const idleWaiters = new Set<() => void>();
  child.on('message', (message: { bench?: string; memory?: NodeJS.MemoryUsage; cpu?: NodeJS.CpuUsage }) => {
    if (message.bench === 'usage' && message.memory && message.cpu) usageWaiters.shift()?.({ memory: message.memory, cpu: message.cpu });
    if (message.bench === 'idle-collection') {
      const { bench: _, ...rest } = message as unknown as IdleCollection & { bench: string };
      idleCollections.push({ ...rest, receivedAt: performance.now() });
      for (const waiter of idleWaiters) waiter();
    }
  });
  const reporter = new Reporter(child, (message) => {
    const event = (message as { event?: OverseerEvent }).event;
    if (!event) return undefined;
    if ('pid' in event && typeof event.pid === 'number' && event.type !== 'master-started') trackPid(event.pid);
    return event as unknown as Tagged;
  });
  const events = reporter.events as unknown as OverseerEvent[];
  const waitEvent: OverseerContender['waitEvent'] = async (type, match, timeoutMs = 20_000, fromIndex = 0) =>
    (await reporter.waitFor(
      (event) => event.type === type && (!match || match(event as never)),
      type,
      timeoutMs,
      fromIndex,
    )) as never;
  await waitEvent('child-ready');
  let serving = (events.find((event) => event.type === 'child-ready') as Extract<OverseerEvent, { type: 'child-ready' }>).pid;
  // CPU time of each child when its 'ready' arrives: what its boot cost.
  const bootCpu = new Map<number, number>();
  child.on('message', (message: { event?: OverseerEvent }) => {
    const event = message.event;
    if (event?.type === 'child-ready') {
      const cpu = tryCpuMs(event.pid);
      if (cpu !== undefined) bootCpu.set(event.pid, cpu);
    }
  });
  const childPids = () => {
    const alive = new Set<number>();
    for (const event of events) {
      if (event.type === 'child-forked') alive.add(event.pid);
      if (event.type === 'child-exited') alive.delete(event.pid);
    }
    return [...alive];
  };

  const contender: OverseerContender = {
    name: 'overseer',
    port,
    masterPid: child.pid ?? -1,
    events,
    reporter,
    dir,
    pids: () => [child.pid ?? -1, ...childPids()],
    servingPid: () => serving,
    waitEvent,
    idleCollections,
    waitIdleCollection(after, timeoutMs) {
      return new Promise((resolve) => {
        const check = () => {
          if (idleCollections.length <= after) return;
          done(idleCollections[after]);
        };
        const done = (value: IdleCollection | undefined) => {
          clearTimeout(timer);
          idleWaiters.delete(check);
          resolve(value);
        };
        const timer = setTimeout(() => done(undefined), timeoutMs);
        idleWaiters.add(check);
        check();
      });
    },
    usage(gc = false) {
      return new Promise((resolve) => {
        usageWaiters.push(resolve);
        child.send({ bench: 'usage', gc });
      });
    },
    async restart() {
      const fromIndex = events.length;
      const from = now();
      const old = serving;
      child.kill('SIGUSR2');
      const completed = await waitEvent('handoff-completed', (event) => event.from === old, 30_000, fromIndex);
      const forked = await waitEvent('child-forked', undefined, 1000, fromIndex);
      const ready = await waitEvent('child-ready', (event) => event.pid === completed.to, 1000, fromIndex);
      const draining = await waitEvent('child-draining', (event) => event.pid === old, 1000, fromIndex);
      const exited = await waitEvent('child-exited', (event) => event.pid === old, 1000, fromIndex);
      serving = completed.to;
      return {
        from,
        to: completed.at,
        phases: {
          boot: { from, to: ready.at },
          drain: { from: draining.at, to: exited.at },
        },
        facts: {
          signalToForkMs: forked.at - from,
          bootMs: ready.bootMs,
          readyMs: completed.timings.readyMs,
          drainMs: completed.timings.drainMs,
          totalMs: completed.timings.totalMs,
          bootCpuMs: bootCpu.get(completed.to) ?? Number.NaN,
        },
      };
    },
    async killChild(signal) {
      const fromIndex = events.length;
      const from = now();
      const old = serving;
      process.kill(old, signal);
      const ready = await waitEvent('child-ready', (event) => event.pid !== old, 30_000, fromIndex);
      const exited = await waitEvent('child-exited', (event) => event.pid === old, 1000, fromIndex);
      const forked = await waitEvent('child-forked', (event) => event.pid === ready.pid, 1000, fromIndex);
      serving = ready.pid;
      return {
        from,
        to: ready.at,
        phases: { down: { from, to: forked.at }, boot: { from: forked.at, to: ready.at } },
        facts: { exitSeenMs: exited.at - from, forkMs: forked.at - from, bootMs: ready.bootMs, gapMs: ready.at - from, bootCpuMs: bootCpu.get(ready.pid) ?? Number.NaN },
      };
    },
    async stop() {
      const pids = childPids();
      await stopChild(child, 'SIGTERM', 10_000);
      await waitGone(pids);
      if (!options.bundle) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return contender;
}

/**
 * A bench-only master of bench/apps/ (`script`), which reports its children's events over IPC:
 * started on `port`, once its first child is ready; `alive()` is the children forked and not exited.
 */
async function startAppMaster(script: string, env: Record<string, string>, options: StartOptions) {
  const port = options.port ?? (await freePort());
  const [command, args] = pinned(options.cpus, node, [app(script)]);
  const child = spawnTracked(command, args, { env: { ...process.env, PORT: String(port), ...env }, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  const reporter = new Reporter(child, (message) => {
    const event = (message as { event?: Tagged }).event;
    if (event?.pid !== undefined) trackPid(event.pid);
    return event;
  });
  const firstReady = (await reporter.waitFor((event) => event.type === 'child-ready', 'child-ready')).pid ?? -1;
  const alive = () => {
    const set = new Set<number>();
    for (const event of reporter.events) {
      if (event.type === 'child-forked' && event.pid) set.add(event.pid);
      if (event.type === 'child-exited' && event.pid) set.delete(event.pid);
    }
    return [...set];
  };
  return { port, child, reporter, firstReady, alive };
}

/** Bench-only stop-then-start master: the old child closes its listener, then the new one is forked. */
export async function startStopStart(options: StartOptions = {}): Promise<Contender> {
  const { port, child, reporter, firstReady, alive } = await startAppMaster('stop-start-master.mjs', { BENCH_DRAIN_MODULE: await internalModule('src/core/drain.ts') }, options);
  let serving = firstReady;
  return {
    name: 'stop-then-start',
    port,
    pids: () => [child.pid ?? -1, ...alive()],
    servingPid: () => serving,
    async restart() {
      const fromIndex = reporter.events.length;
      const from = now();
      const old = serving;
      child.send('restart');
      const closed = await reporter.waitFor((event) => event.type === 'listener-closed' && event.pid === old, 'listener-closed', 10_000, fromIndex);
      const ready = await reporter.waitFor((event) => event.type === 'child-ready' && event.pid !== old, 'child-ready', 30_000, fromIndex);
      const exited = await reporter.waitFor((event) => event.type === 'child-exited' && event.pid === old, 'child-exited', 30_000, fromIndex);
      serving = ready.pid ?? -1;
      return {
        from,
        to: Math.max(ready.at, exited.at),
        phases: { 'no listener': { from: closed.at, to: ready.at }, drain: { from: closed.at, to: exited.at } },
        facts: { closedToReadyMs: ready.at - closed.at, drainMs: exited.at - closed.at },
      };
    },
    async stop() {
      const pids = alive();
      await stopChild(child);
      await waitGone(pids);
    },
  };
}

/** PM2 cluster mode with `instances` workers of bare.cjs; restart = `pm2 reload` (API call). */
export async function startPm2(pm2: Pm2, instances: number, options: StartOptions = {}): Promise<Contender> {
  const port = options.port ?? (await freePort());
  const name = `bench-${instances}-${port}`;
  await pm2.call('start', {
    config: {
      name,
      script: app('bare.cjs'),
      exec_mode: 'cluster',
      instances,
      wait_ready: true,
      listen_timeout: 3000,
      kill_timeout: 1600,
      env: { PORT: String(port) },
      out_file: '/dev/null',
      error_file: '/dev/null',
    },
  });
  const list = async () => ((await pm2.call('list', {})).data as Array<{ pid: number; status: string }>);
  const deadline = Date.now() + 20_000;
  while ((await list()).filter((item) => item.status === 'online' && item.pid > 0).length < instances) {
    if (Date.now() > deadline) throw new Error('PM2 workers did not come online');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  let workers = (await list()).map((item) => item.pid);
  return {
    name: `pm2 reload ×${instances}`,
    port,
    pids: () => [pm2.daemonPid(), ...workers],
    servingPid: () => workers[0] ?? -1,
    async restart() {
      const from = now();
      const reply = await pm2.call('reload', { name });
      const to = now();
      workers = (await list()).map((item) => item.pid);
      return { from, to, phases: {}, facts: { reloadMs: to - from, replyLagMs: to - reply.at } };
    },
    async stop() {
      await pm2.call('delete', { name });
    },
  };
}
