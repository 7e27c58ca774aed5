/**
 * The overseer contender's app, written as a bundle into a temp dir (upgrades replace it there):
 * run() serving the shared handler, its master reporting every event over IPC and answering the
 * runner's usage queries. Address, options and fetcher come from the environment.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchDir, root } from './procs.ts';

/** The build under test: ./dist, or a snapshot (BENCH_DIST, set by run.ts --dist=head). */
export const distDir = process.env.BENCH_DIST ?? path.join(root, 'dist');
export const overseerUrl = pathToFileURL(path.join(distDir, 'src/index.js')).href;
export const fetchersUrl = pathToFileURL(path.join(distDir, 'fetchers/index.js')).href;
const handlerPath = path.join(benchDir, 'apps/handler.cjs');

/** The bundle's source; `padding` bytes of comment make a bigger release. */
export function overseerAppSource(version: string, padding = 0): string {
  return `// overseer bench app ${version}
import http from 'node:http';
import { createRequire } from 'node:module';
import { run } from ${JSON.stringify(overseerUrl)};

const env = process.env;
if (env.OVERSEER_ROLE === undefined) {
  // Master only: the runner asks for the master's own view of its memory and CPU.
  process.on('message', (message) => {
    if (message?.bench !== 'usage') return;
    if (message.gc) globalThis.gc?.();
    process.send?.({ bench: 'usage', memory: process.memoryUsage(), cpu: process.cpuUsage() });
  });
  // The master's idle collections (src/core/idle-gc.ts; a build without them publishes nothing).
  process.getBuiltinModule('node:diagnostics_channel').subscribe('overseer:idle-collection', (message) => process.send?.({ bench: 'idle-collection', ...message }));
}
const spec = env.BENCH_FETCHER ? JSON.parse(env.BENCH_FETCHER) : undefined;
// Only a master with a fetcher pays for importing the fetchers (none loads its client until it polls).
const fetchers = spec ? await import(${JSON.stringify(fetchersUrl)}) : undefined;
const kinds = fetchers && { http: fetchers.HttpFetcher, file: fetchers.FileFetcher, s3: fetchers.S3Fetcher, github: fetchers.GitHubFetcher };
run({
  address: env.BENCH_ADDRESS ?? '127.0.0.1:0',
  version: ${JSON.stringify(version)},
  ...JSON.parse(env.BENCH_OPTIONS ?? '{}'),
  ...(spec ? { fetcher: new kinds[spec.kind](spec.options) } : {}),
  onEvent: (event) => process.send?.({ event }),
  async program(state) {
    const handle = createRequire(import.meta.url)(${JSON.stringify(handlerPath)});
    const warmup = Number(env.BENCH_WARMUP ?? 0);
    if (warmup > 0) {
      // Warm Node's HTTP path (parser, handler, sockets) on a private port before taking the shared one.
      const scratch = http.createServer(handle);
      await new Promise((resolve) => scratch.listen(0, '127.0.0.1', resolve));
      const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
      const ask = () => new Promise((resolve, reject) => http.get({ port: scratch.address().port, host: '127.0.0.1', agent }, (res) => res.resume().on('end', resolve)).on('error', reject));
      for (let done = 0; done < warmup; done += 8) await Promise.all(Array.from({ length: 8 }, ask));
      agent.destroy();
      scratch.closeAllConnections();
      await new Promise((resolve) => scratch.close(resolve));
    }
    await state.listen(http.createServer(handle));
  },
});
${padding > 0 ? `/*${'x'.repeat(padding)}*/\n` : ''}`;
}

export function writeOverseerApp(dir: string, version: string): string {
  const file = path.join(dir, 'app.mjs');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(file, overseerAppSource(version));
  return file;
}
