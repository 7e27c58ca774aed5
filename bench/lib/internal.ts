/**
 * Internal modules of overseer's for the bench apps that use one directly (the stop-then-start
 * contender's Drainer, the probation counter's cost). The bundled build keeps no file per module,
 * so each is built from src/ with esbuild into the temp dir, once per run; a BENCH_DIST snapshot
 * from before the bundling still has its own file, and then that one is used.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { distDir } from './apps.ts';
import { root } from './procs.ts';

const built = new Map<string, Promise<string>>();
const temps: string[] = [];
process.once('exit', () => {
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
});

/** A file URL of `source` (e.g. 'src/core/drain.ts') that a plain .mjs app can import(). */
export function internalModule(source: string): Promise<string> {
  let url = built.get(source);
  if (url === undefined) {
    url = buildOnce(source);
    built.set(source, url);
  }
  return url;
}

async function buildOnce(source: string): Promise<string> {
  const snapshot = path.join(distDir, source.replace(/\.ts$/, '.js'));
  if (fs.existsSync(snapshot)) return pathToFileURL(snapshot).href;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-bench-'));
  temps.push(dir);
  const outfile = path.join(dir, `${path.basename(source, '.ts')}.mjs`);
  await build({ entryPoints: [path.join(root, source)], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' });
  return pathToFileURL(outfile).href;
}
