/**
 * Processes the benchmarks start, and what /proc says about them. Every process started here is
 * remembered by pid and killed (by that pid, never by name) when the run ends or fails.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAlive } from '../../support/process.ts';
import { now, sleep } from './clock.ts';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const benchDir = path.join(root, 'bench');

const started = new Set<ChildProcess>();
/** Grandchildren we learnt about (overseer children, cluster workers): killed on exit if still there. */
const extraPids = new Set<number>();
const exitHooks: Array<() => void> = [];

function killEverything(): void {
  for (const hook of exitHooks.splice(0)) {
    try {
      hook();
    } catch {
      // Keep cleaning up the rest.
    }
  }
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const pid of extraPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
process.on('exit', killEverything);

/** Runs `hook` when the run ends, also on failure (synchronous work only). */
export function onExit(hook: () => void): void {
  exitHooks.push(hook);
}

export function trackPid(pid: number): void {
  if (pid > 0) extraPids.add(pid);
}

export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options);
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

export { isAlive };

/** Signals a process we started and waits for it to exit, SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Waits until none of `pids` exists (bounded). */
export async function waitGone(pids: Iterable<number>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const pid of pids) {
    while (isAlive(pid) && Date.now() < deadline) await sleep(20);
    if (isAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
  }
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  server.close();
  await once(server, 'close');
  return port;
}

export const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU time of a process so far, ms (from /proc/<pid>/stat utime+stime). */
export function cpuMs(pid: number): number {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime field 15.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
}

export function tryCpuMs(pid: number): number | undefined {
  try {
    return cpuMs(pid);
  } catch {
    return undefined;
  }
}

/** VmRSS, VmHWM and the RSS split (anonymous memory vs mapped files such as the node binary), bytes. */
export function memory(pid: number): { rss: number; hwm: number; anon: number; file: number } {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) * 1024;
  return { rss: field('VmRSS'), hwm: field('VmHWM'), anon: field('RssAnon'), file: field('RssFile') };
}

/** Resets the peak RSS (VmHWM) of a process to its current RSS. */
export function resetPeak(pid: number): void {
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

export function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Machine-wide CPU jiffies, busy and total, from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((sum, value) => sum + value, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: total - idle, total };
}

/** Samples machine CPU use every `everyMs`; busyShare() answers for any window inside the sampling. */
export function sampleMachineCpu(everyMs = 50): { stop(): void; busyShare(from: number, to: number): number } {
  const samples: Array<{ at: number; busy: number; total: number }> = [];
  const take = () => samples.push({ at: now(), ...machineCpu() });
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop: () => clearInterval(timer),
    busyShare(from, to) {
      const first = samples.findLast((sample) => sample.at <= from) ?? samples[0];
      const last = samples.find((sample) => sample.at >= to) ?? samples[samples.length - 1];
      if (!first || !last || last.total === first.total) return Number.NaN;
      return (last.busy - first.busy) / (last.total - first.total);
    },
  };
}

export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Pins a running process (this one, say) to a CPU list such as '1' or '0,1'. */
export function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** The command to start `args` pinned to `cpus`, or unpinned when cpus is undefined. */
export function pinned(cpus: string | undefined, command: string, args: readonly string[]): [string, string[]] {
  return cpus === undefined ? [command, [...args]] : ['taskset', ['-c', cpus, command, ...args]];
}

let quietGate: { maxBusy: number; maxWaitMs: number; budgetMs: number } | undefined;
let waited = 0;

/**
 * Makes waitForQuiet() wait (full runs): until the machine's CPU is at most `maxBusy` busy, at
 * most `maxWaitMs` each time and `budgetMs` in all, so a machine that never calms down still
 * gets measured (and the results say how busy it was).
 */
export function setQuietGate(gate: { maxBusy: number; maxWaitMs: number; budgetMs: number } | undefined): void {
  quietGate = gate;
}

/** Total ms waitForQuiet() has waited so far. */
export function quietWaited(): number {
  return waited;
}

/**
 * Other users' work shares this machine: before a measurement, wait (when the gate is set) until
 * the whole machine was at most maxBusy busy over 2 s. Returns the last busy share seen.
 */
export async function waitForQuiet(): Promise<number> {
  const started = Date.now();
  const deadline = started + Math.min(quietGate?.maxWaitMs ?? 0, Math.max(0, (quietGate?.budgetMs ?? 0) - waited));
  try {
    for (;;) {
      const before = machineCpu();
      await sleep(2000);
      const after = machineCpu();
      const busy = (after.busy - before.busy) / Math.max(1, after.total - before.total);
      if (!quietGate || busy <= quietGate.maxBusy || Date.now() > deadline) return busy;
    }
  } finally {
    if (quietGate) waited += Math.max(0, Date.now() - started - 2000);
  }
}

export function loadAverage(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
