/**
 * Self-updating tools for the self-update tests: a script (or a single executable's bundle) that
 * calls selfUpdating() from overseer by absolute URL, so it runs from any temp directory, and
 * prints one JSON line with its version, what it was told and whether it started a check (and a
 * line when it spawns the background updater).
 * Releases of it are the same source with another version.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from '../helpers/master.ts';

const entryUrl = pathToFileURL(path.join(root, 'dist/src/self-update/index.js')).href;
const httpUrl = pathToFileURL(path.join(root, 'dist/fetchers/http.js')).href;

export type ToolMode = 'tool' | 'no-token';

/** The tool's source. TOOL_URL: the release URL (with a .sha256 sidecar when TOOL_SHA256 is set). */
export function toolSource(version: string, mode: ToolMode = 'tool', imports: { entry: string; http: string } = { entry: entryUrl, http: httpUrl }): string {
  if (mode === 'no-token') return `// not an overseer program, claims ${version}\nconsole.log('hello');\n`;
  return `// tool ${version}
import { selfUpdating } from ${JSON.stringify(imports.entry)};
const env = process.env;
// Says on stdout when this run starts a background updater (the tool run again with OVERSEER_ROLE=self-update).
const childProcess = process.getBuiltinModule('node:child_process');
const spawn = childProcess.spawn;
childProcess.spawn = (...args) => {
  if (args.at(-1)?.env?.OVERSEER_ROLE === 'self-update') console.log('spawned the background updater');
  return spawn(...args);
};
await selfUpdating({
  version: ${JSON.stringify(version)},
  checkEvery: Number(env.TOOL_CHECK_EVERY ?? 0),
  ...(env.TOOL_URL ? { fetcher: () => import(${JSON.stringify(imports.http)}).then(({ HttpFetcher }) => new HttpFetcher({
    url: env.TOOL_URL, timeout: 5000, ...(env.TOOL_SHA256 ? { sha256Url: env.TOOL_URL + '.sha256' } : {}),
  })) } : {}),
  verify: JSON.parse(env.TOOL_VERIFY ?? '{}'),
  async program(tool) {
    if (process.argv[2] === 'self-update') {
      const result = await tool.selfUpdate({ onEvent: (event) => {
        if (event.type === 'upgrade-progress') console.log('progress ' + event.received + ' ' + event.total);
      } });
      console.log('result ' + JSON.stringify(result));
      return;
    }
    console.log(JSON.stringify({ version: tool.version, updated: tool.updated ?? null, checking: tool.checking }));
  },
});
`;
}

export function writeTool(file: string, version: string, mode: ToolMode = 'tool'): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, toolSource(version, mode), { mode: 0o755 });
  return file;
}

export interface ToolRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The JSON line the tool printed (absent for `self-update`). */
  readonly answer: { version: string; updated: { from: string; to: string | null } | null; checking: boolean } | undefined;
}

/** Runs the tool (node <file> or the executable itself) to its end; a background check it starts is not waited for. */
export function runTool(command: string[], env: Record<string, string>, options: { uid?: number; gid?: number } = {}): Promise<ToolRun> {
  const [file, ...args] = command as [string, ...string[]];
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout: 60_000, ...options }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      if (error && code === null) return reject(Object.assign(error, { stdout, stderr }));
      const line = stdout.split('\n').find((text) => text.startsWith('{'));
      resolve({ code, stdout, stderr, answer: line === undefined ? undefined : JSON.parse(line) });
    });
  });
}
