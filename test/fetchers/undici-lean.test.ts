/**
 * The lean undici load (fetchers/undici-lean.ts): with the installed undici it loads by path and
 * never its index (fetch, WebSocket, cache, mocks), in a fresh process; its request() speaks
 * GET and HEAD to a real server, query string included; a poll through HttpFetcher does not
 * load the index either.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { loadLeanUndici } from '../../fetchers/undici-lean.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const seen: Array<{ method: string; url: string }> = [];
let server: Server;
let base: string;

before(async () => {
  server = createServer((request, response) => {
    seen.push({ method: request.method ?? '', url: request.url ?? '' });
    response.setHeader('content-type', 'text/plain');
    response.end('hello');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** In a fresh process: which undici files a script loaded (CommonJS cache), as paths inside undici. */
async function undiciFilesAfter(script: string): Promise<string[]> {
  const probe = `
    import { createRequire } from 'node:module';
    ${script}
    const require = createRequire(import.meta.url);
    const files = Object.keys(require.cache).filter((file) => file.includes('/node_modules/undici/')).map((file) => file.slice(file.indexOf('/node_modules/undici/') + 21));
    process.stdout.write(JSON.stringify(files));
  `;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { cwd: root });
  return JSON.parse(stdout) as string[];
}

test('loads the dispatcher and request API by path, never undici/index.js', async () => {
  const url = pathToFileURL(path.join(root, 'fetchers/undici-lean.ts')).href;
  const files = await undiciFilesAfter(`const lean = await (await import(${JSON.stringify(url)})).loadLeanUndici(); if (lean.loaded !== 'lean') throw new Error(lean.loaded);`);
  assert.ok(files.includes('lib/dispatcher/env-http-proxy-agent.js'), JSON.stringify(files));
  assert.ok(files.includes('lib/api/api-request.js'));
  assert.ok(!files.includes('index.js'), 'the package index (fetch, WebSocket, mocks) stays unloaded');
  assert.ok(!files.some((file) => file.startsWith('lib/web/websocket/') || file.startsWith('lib/mock/')), JSON.stringify(files));
});

/** The undici files a fresh process loads to poll once through the HttpFetcher module at `file`. */
function undiciFilesAfterPoll(file: string): Promise<string[]> {
  const url = pathToFileURL(path.join(root, file)).href;
  return undiciFilesAfter(`
    const { HttpFetcher } = await import(${JSON.stringify(url)});
    const fetcher = new HttpFetcher({ url: ${JSON.stringify(`${base}/app.mjs`)} });
    const result = await fetcher.fetch({ signal: new AbortController().signal, currentSha256: 'x', currentVersion: undefined });
    if (result.type !== 'update') throw new Error(result.type);
    await fetcher.close();
  `);
}

test('a poll through HttpFetcher loads no undici index either', async () => {
  const files = await undiciFilesAfterPoll('fetchers/http.ts');
  assert.ok(files.length > 0, 'undici was loaded for the poll');
  assert.ok(!files.includes('index.js'), JSON.stringify(files));
});

test('request() sends GET and HEAD with headers and the query string', async () => {
  const lean = await loadLeanUndici();
  assert.equal(lean.loaded, 'lean');
  const dispatcher = new lean.EnvHttpProxyAgent();
  try {
    const signal = new AbortController().signal;
    const got = await lean.request(new URL(`${base}/file.bin?x=1&y=2`), { method: 'GET', headers: { 'user-agent': 'overseer' }, dispatcher, signal });
    assert.equal(got.statusCode, 200);
    assert.equal(await got.body.text(), 'hello');
    const head = await lean.request(new URL(`${base}/file.bin`), { method: 'HEAD', headers: {}, dispatcher, signal });
    assert.equal(head.statusCode, 200);
    await head.body.dump();
    assert.deepEqual(seen.slice(-2), [
      { method: 'GET', url: '/file.bin?x=1&y=2' },
      { method: 'HEAD', url: '/file.bin' },
    ]);
  } finally {
    await dispatcher.close();
  }
});

test('the build bundles those modules: a poll through the built HttpFetcher loads no undici file from node_modules', async () => {
  // scripts/bundle.mjs replaces undici-parts.ts with static imports that esbuild bundles into a chunk.
  const files = await undiciFilesAfterPoll('dist/fetchers/http.js');
  assert.deepEqual(files, []);
});
