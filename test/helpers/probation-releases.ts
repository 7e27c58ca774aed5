/**
 * Releases for probation tests: builds that boot fine and then fail in the ways the probation
 * watches for (a crash 1 s after ready, 500 to a third of requests, a health path that 404s, a
 * program that reports itself unhealthy), and a good one. `runRelease` is a run() bundle;
 * `execRelease` is a plain Node server on fd 3 for `overseer run`, with no overseer code.
 * Every answer is JSON with the pid and version that gave it, 500s too; GET /exit ends the process (code 9).
 */
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { root } from './master.ts';

export type ProbationMode = 'good' | 'crash-later' | 'errors-third' | 'probe-404' | 'unhealthy';

/** The request handler's body, shared by both kinds: `version` and `mode` are in scope. */
const HANDLER = `
let served = 0;
const handler = (req, res) => {
  const body = JSON.stringify({ pid: process.pid, id: '', version });
  if (req.url === '/health') {
    res.statusCode = mode === 'probe-404' ? 404 : 200;
    return res.end(body);
  }
  if (req.url === '/exit') setImmediate(() => process.exit(9));
  served += 1;
  if (mode === 'errors-third' && served % 3 === 0) res.statusCode = 500;
  res.end(body);
};`;

const indexUrl = pathToFileURL(path.join(root, 'dist/src/index.js')).href;
const fetchersUrl = pathToFileURL(path.join(root, 'dist/fetchers/index.js')).href;

export function runRelease(version: string, mode: ProbationMode = 'good'): string {
  return `// release ${version} (${mode})
import http from 'node:http';
import { run } from ${JSON.stringify(indexUrl)};
import { HttpFetcher } from ${JSON.stringify(fetchersUrl)};
const version = ${JSON.stringify(version)};
const mode = ${JSON.stringify(mode)};
${HANDLER}
const env = process.env;
run({
  address: '127.0.0.1:0',
  version,
  minFetchInterval: 50,
  ...(env.APP_FETCH_URL ? { fetcher: new HttpFetcher({ url: env.APP_FETCH_URL, interval: 100 }) } : {}),
  ...JSON.parse(env.APP_OPTIONS ?? '{}'),
  onEvent: (event) => process.send?.({ event }),
  async program(state) {
    await state.listen(http.createServer(handler));
    if (mode === 'crash-later') setTimeout(() => process.exit(7), 1000);
    if (mode === 'unhealthy') setTimeout(() => state.reportUnhealthy('the database pool is exhausted'), 300);
  },
});
`;
}

export function execRelease(version: string, mode: ProbationMode = 'good'): string {
  return `// release ${version} (${mode}) for overseer run: no overseer code
import fs from 'node:fs';
import http from 'node:http';
const version = ${JSON.stringify(version)};
const mode = ${JSON.stringify(mode)};
${HANDLER}
let draining = false;
const server = http.createServer((req, res) => {
  if (draining) res.shouldKeepAlive = false;
  handler(req, res);
});
server.listen({ fd: 3 }, () => {
  if (process.env.OVERSEER_READY_FD) fs.writeSync(Number(process.env.OVERSEER_READY_FD), 'READY=1\\n');
  if (mode === 'crash-later') setTimeout(() => process.exit(7), 1000);
});
// The gentle drain docs/command.md asks of programs under overseer run (as folder-server.mjs does).
process.on('SIGTERM', () => {
  draining = true;
  server.once('close', () => process.exit(0));
  if (server.listening) Object.getPrototypeOf(http.Server.prototype).close.call(server);
  setTimeout(() => server.closeIdleConnections(), 1000).unref();
  setTimeout(() => server.closeAllConnections(), 5000).unref();
});
`;
}
