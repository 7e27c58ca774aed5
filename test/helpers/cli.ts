/**
 * Runs the built `overseer` command for CLI tests: `overseer run --events …` followed through its
 * overseer-event lines on stderr, and every process and directory such a test makes, cleaned up
 * by cleanupCli() (call it from `after`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { EVENT_LINE_PREFIX } from '../../src/protocol.ts';
import { exitCodeOf, threadsOf } from './exit.ts';
import { isAlive, root, tempDir, until } from './master.ts';

export const cli = `${root}/dist/src/cli/main.js`;

const started: ChildProcess[] = [];
const childPids = new Set<number>();
/** For each master started, the pids of the children it reported forking. */
const forkedBy: Array<() => number[]> = [];
const dirs: string[] = [];

/** Kills every master and child the CLI tests started and removes their directories. */
export function cleanupCli(): void {
  for (const master of started) if (master.exitCode === null && master.signalCode === null) master.kill('SIGKILL');
  // Children of a master killed here have no IPC channel to notice it: every one it forked goes too.
  for (const forkedPids of forkedBy) for (const pid of forkedPids()) childPids.add(pid);
  for (const pid of childPids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
}

/** A temp directory removed by cleanupCli(). */
export function scratch(prefix = 'overseer-cli-'): string {
  const dir = tempDir(prefix);
  dirs.push(dir);
  return dir;
}

/**
 * A scratch app folder for `overseer run -c`: app.mjs holds `app`, release/ is empty, and
 * overseer.config.json runs `node app.mjs` as its own bundle on one loopback listener, with
 * `extra` (given the folder) on top.
 */
export function appFolder(prefix: string, app: string, extra: (dir: string) => Record<string, unknown>): { dir: string; config: string } {
  const dir = scratch(prefix);
  fs.writeFileSync(path.join(dir, 'app.mjs'), app);
  fs.mkdirSync(path.join(dir, 'release'));
  const config = path.join(dir, 'overseer.config.json');
  fs.writeFileSync(config, JSON.stringify({
    listeners: [{ name: 'web', address: '127.0.0.1:0' }],
    command: [process.execPath, 'app.mjs'],
    bundle: 'app.mjs',
    ...extra(dir),
  }, null, 2));
  return { dir, config };
}

/** One GET with a fresh connection, its body parsed as JSON. */
export function getJson<T>(port: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const request = http.get({ port, host: '127.0.0.1', path: '/', agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(JSON.parse(body) as T));
    });
    request.on('error', reject);
  });
}

/** Runs `overseer ARGS…` (ctl status, release, …) from the repository root to its end. */
export async function overseer(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** `overseer run --events …`, following its lifecycle from the overseer-event lines on stderr. */
export function runCli(args: string[], cwd = root) {
  const master = spawn(process.execPath, [cli, 'run', '--events', ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  started.push(master);
  let stderr = '';
  master.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const events = (type: string) => stderr.split('\n')
    .filter((line) => line.startsWith(EVENT_LINE_PREFIX))
    .map((line) => JSON.parse(line.slice(EVENT_LINE_PREFIX.length)) as Record<string, unknown>)
    .filter((event) => event.type === type);
  const waitFor = (type: string, count = 1, timeoutMs = 10_000) => until(`${type} #${count} from overseer run`, () => {
    const found = events(type);
    if (found.length < count && master.exitCode !== null) throw new Error(`overseer run exited (${master.exitCode}):\n${stderr}`);
    for (const event of found) if (event.type === 'child-ready') childPids.add(event.pid as number);
    return found[count - 1];
  }, timeoutMs);
  const forked = () => events('child-forked').map((event) => event.pid as number);
  forkedBy.push(forked);
  // A master that does not exit fails the test with its stderr and what it and its children were doing.
  const explain = () => [...forked().filter(isAlive).map(threadsOf), `its stderr:\n${stderr}`].join('\n');
  const exited = exitCodeOf(master, 'overseer run', explain);
  return { master, events, waitFor, exited, stderr: () => stderr };
}
