/**
 * Builds a real single executable application (node:sea) with Node's documented recipe: bundle
 * the tool into one CommonJS script (esbuild), `node --experimental-sea-config` makes the blob,
 * a copy of this node gets it injected with postject. About 100 MB each: build once per file.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { root } from '../helpers/master.ts';

const run = promisify(execFile);

/** The fuse Node's SEA support looks for (Node's docs give this sentinel). */
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** Why this platform or Node cannot build a single executable, or undefined when it can. */
export function whyNoSea(): string | undefined {
  if (process.platform === 'win32') return 'overseer does not run on Windows';
  if (process.platform === 'darwin') return 'a macOS SEA must be re-signed with codesign after postject; the tests build Linux ones';
  if (process.getBuiltinModule('node:sea') === undefined) return `Node ${process.version} has no node:sea`;
  // A node built without SEA support (some distributions' packages) lacks the fuse postject flips.
  if (!fs.readFileSync(process.execPath).includes(FUSE)) return `${process.execPath} was built without single executable support (no ${FUSE})`;
  return undefined;
}

/**
 * A tool that is both kinds of overseer program: `mytool serve` is a run() server whose master
 * polls SEA_API (a fake GitHub); `mytool` is a selfUpdating() CLI polling the same. Both pick
 * the asset `mytool-{platform}-{arch}`. Plain imports only: a SEA runs one CommonJS script.
 */
export function seaToolSource(version: string): string {
  const dist = (file: string) => JSON.stringify(path.join(root, 'dist', file));
  return `// sea tool ${version}
import http from 'node:http';
import { run } from ${dist('src/index.js')};
import { selfUpdating } from ${dist('src/self-update/index.js')};
import { GitHubFetcher } from ${dist('fetchers/github.js')};
const env = process.env;
const fetcher = () => new GitHubFetcher({ owner: 'acme', repo: 'mytool', baseUrl: env.SEA_API, asset: 'mytool-{platform}-{arch}', interval: 200 });
if (process.argv[2] === 'serve') {
  run({
    address: '127.0.0.1:0', version: ${JSON.stringify(version)}, minFetchInterval: 50, checkTimeout: 30000, noWarn: true,
    ...(env.SEA_API ? { fetcher: fetcher() } : {}),
    onEvent: (event) => process.send?.({ event }),
    async program(state) {
      await state.listen(http.createServer((req, res) => res.end(JSON.stringify({ pid: process.pid, version: state.version, sea: require('node:sea').isSea() }))));
    },
  });
} else {
  selfUpdating({
    version: ${JSON.stringify(version)}, checkEvery: 0, checkTimeout: 30000,
    ...(env.SEA_API ? { fetcher } : {}),
    program(tool) {
      console.log(JSON.stringify({ version: tool.version, updated: tool.updated ?? null, checking: tool.checking, sea: require('node:sea').isSea() }));
    },
  });
}
`;
}

/** Builds the executable `output` from `source`; `work` holds the intermediate files. */
export async function buildSea(source: string, output: string, work: string): Promise<void> {
  fs.mkdirSync(work, { recursive: true });
  const entry = path.join(work, 'entry.mjs');
  const bundle = path.join(work, 'bundle.cjs');
  const blob = path.join(work, 'sea.blob');
  const config = path.join(work, 'sea-config.json');
  fs.writeFileSync(entry, source);
  await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: bundle, logLevel: 'error' });
  fs.writeFileSync(config, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true }));
  await run(process.execPath, ['--experimental-sea-config', config], { cwd: work });
  fs.copyFileSync(process.execPath, output);
  fs.chmodSync(output, 0o755);
  await run(process.execPath, [path.join(root, 'node_modules/postject/dist/cli.js'), output, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], { cwd: work });
  for (const file of [entry, bundle, blob, config]) fs.rmSync(file, { force: true });
}
