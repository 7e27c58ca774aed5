/**
 * What the `overseer deploy` tests share: a real `overseer deploy` process on a temp folder
 * (through test/fixtures/deploy-main.mjs), application folders and staged releases of the
 * fixture server, command files, and one GET. Call `cleanUp` from each file's `after`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { exitCodeOf } from '../helpers/exit.ts';
import { fixture, isAlive, tempDir as makeTempDir, until } from '../helpers/master.ts';

const server = fs.readFileSync(fixture('deploy-server.mjs'));
const spawned = new Set<number>();
const folders: string[] = [];

/** A temp folder removed by cleanUp(). */
export function tempDir(prefix = 'overseer-deploy-'): string {
  const dir = makeTempDir(prefix);
  folders.push(dir);
  return dir;
}

/** Kills every process a deploy reported and removes the temp folders. */
export function cleanUp(): void {
  for (const pid of spawned) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  for (const folder of folders) fs.rmSync(folder, { recursive: true, force: true });
}

export interface Deploy {
  readonly process: ChildProcess;
  /** Its exit code; a wait on it fails after EXIT_DEADLINE_MS (scaled) with its stderr. */
  readonly exited: PromiseLike<number | null>;
  stderr(): string;
  stdout(): string;
  /** The first match of `pattern` in stderr after `from` characters, once it is there. */
  line(pattern: RegExp, what: string, from?: number): Promise<RegExpMatchArray>;
}

/** Starts `overseer deploy DIR` through the test entry point and remembers every pid it reports. */
export function startDeploy(dir: string, args: string[] = []): Deploy {
  const child = spawn(process.execPath, [fixture('deploy-main.mjs'), dir, '--poll', '50', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.add(child.pid ?? -1);
  let stderr = '';
  let stdout = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    for (const match of chunk.matchAll(/(?:pid|child) (\d+)/g)) spawned.add(Number(match[1]));
  });
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  return {
    process: child,
    exited: exitCodeOf(child, 'overseer deploy', () => `its stderr:\n${stderr}`),
    stderr: () => stderr,
    stdout: () => stdout,
    line: (pattern, what, from = 0) => until(what, () => {
      if (child.exitCode !== null) throw new Error(`overseer deploy exited (${child.exitCode}) before ${what}:\n${stderr}`);
      return stderr.slice(from).match(pattern) ?? undefined;
    }, 15_000),
  };
}

export interface AppOptions {
  readonly version?: string;
  readonly listen?: boolean;
  readonly extra?: Record<string, unknown>;
}

/** An application folder with app.json and, given a version, a current/ release of the fixture server. */
export function makeApp(dir: string, name: string, options: AppOptions = {}): string {
  const app = path.join(dir, name);
  fs.mkdirSync(app, { recursive: true });
  fs.writeFileSync(path.join(app, 'app.json'), JSON.stringify({
    command: [process.execPath, 'server.mjs'],
    ...(options.listen === false ? {} : { listen: ['web=127.0.0.1:0'] }),
    ...options.extra,
  }));
  if (options.version !== undefined) writeRelease(path.join(app, 'current'), options.version);
  return app;
}

export function writeRelease(folder: string, version: string, extra: Record<string, string> = {}): void {
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, 'server.mjs'), server);
  fs.writeFileSync(path.join(folder, 'VERSION'), `${version}\n`);
  for (const [name, text] of Object.entries(extra)) fs.writeFileSync(path.join(folder, name), text);
}

/** Stages a release in release/ (emptied first); SHA256SUMS lists every file when `sums`. */
export function stage(app: string, version: string, options: { marker?: boolean; sums?: boolean; extra?: Record<string, string> } = {}): string {
  const release = path.join(app, 'release');
  fs.rmSync(release, { recursive: true, force: true });
  writeRelease(release, version, options.extra);
  if (options.sums) {
    const lines = fs.readdirSync(release).sort().map((name) => `${createHash('sha256').update(fs.readFileSync(path.join(release, name))).digest('hex')}  ${name}\n`);
    fs.writeFileSync(path.join(release, 'SHA256SUMS'), lines.join(''));
  }
  if (options.marker !== false) fs.writeFileSync(path.join(release, '.ready'), '');
  return release;
}

/** Drops command/NAME and waits until it is handled; returns command/NAME.failed, if written. */
export async function command(app: string, name: string): Promise<string | undefined> {
  const file = path.join(app, 'command', name);
  fs.rmSync(`${file}.failed`, { force: true });
  fs.writeFileSync(file, '');
  await until(`command/${name} to be handled`, () => (fs.existsSync(file) ? undefined : true), 20_000);
  return fs.existsSync(`${file}.failed`) ? fs.readFileSync(`${file}.failed`, 'utf8') : undefined;
}

/** One GET on a fresh connection. */
export function get(port: number): Promise<{ pid: number; version: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => {
        try {
          resolve(JSON.parse(body) as { pid: number; version: string });
        } catch (error) {
          reject(error as Error);
        }
      });
    }).on('error', reject);
  });
}

export const archives = (app: string) => fs.readdirSync(path.join(app, 'archive')).sort();
export const versionIn = (folder: string) => fs.readFileSync(path.join(folder, 'VERSION'), 'utf8').trim();
