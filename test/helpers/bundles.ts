/**
 * Release bundles for upgrade tests: small served apps (or broken ones) that import overseer by
 * absolute URL, so they run from any temp directory. Each answers with its pid and version.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from './master.ts';

export type BundleMode = 'serve' | 'cli' | 'throw-on-import' | 'hang-on-import' | 'no-token' | 'crash-in-program' | 'never-ready' | 'exits-before-ready';

const indexUrl = pathToFileURL(path.join(root, 'dist/src/index.js')).href;
const fetchersUrl = pathToFileURL(path.join(root, 'dist/fetchers/index.js')).href;

export function bundleSource(version: string, mode: BundleMode = 'serve'): string {
  const before = {
    'throw-on-import': `throw new Error('this release is broken at import');`,
    'hang-on-import': `setInterval(() => {}, 1000); await new Promise(() => {});`,
    'no-token': `console.log('not an overseer program'); process.exit(0);`,
  }[mode as string] ?? '';
  const inProgram = {
    'crash-in-program': `throw new Error('this release crashes in program');`,
    // The child's IPC channel does not keep it alive: without the interval a program that never
    // resolves lets the child exit (code 0) at once, which is 'exits-before-ready', not readyTimeout.
    'never-ready': `setInterval(() => {}, 1000); await new Promise(() => {});`,
    'exits-before-ready': `await new Promise(() => {});`,
  }[mode as string] ?? '';
  const serve = mode === 'cli'
    ? `console.log('cli version ' + state.version + ' id ' + state.id);`
    : `const server = http.createServer((req, res) => res.end(JSON.stringify({ pid: process.pid, id: state.id, version: state.version ?? null })));
    await state.listen(server);`;
  return `// release ${version} (${mode})
import http from 'node:http';
import { run } from ${JSON.stringify(indexUrl)};
import { HttpFetcher } from ${JSON.stringify(fetchersUrl)};
${before}
const env = process.env;
const options = JSON.parse(env.APP_OPTIONS ?? '{}');
run({
  ...(${mode === 'cli'} ? {} : { address: env.APP_ADDRESS ?? '127.0.0.1:0' }),
  version: ${JSON.stringify(version)},
  minFetchInterval: 50,
  ...(env.APP_FETCH_URL ? { fetcher: new HttpFetcher({
    url: env.APP_FETCH_URL, interval: Number(env.APP_FETCH_INTERVAL ?? 100), timeout: Number(env.APP_FETCH_TIMEOUT ?? 5000),
    ...(env.APP_FETCH_SHA256_URL ? { sha256Url: env.APP_FETCH_SHA256_URL } : {}),
    ...(env.APP_FETCH_SIGNATURE_URL ? { signatureUrl: env.APP_FETCH_SIGNATURE_URL } : {}),
    ...JSON.parse(env.APP_FETCH_OPTIONS ?? '{}'),
  }) } : {}),
  ...options,
  onEvent: (event) => process.send?.({ event }),
  async program(state) {
    ${inProgram}
    ${serve}
  },
});
`;
}

/** Writes a bundle to `file` (creating its directory). */
export function writeBundle(file: string, version: string, mode: BundleMode = 'serve'): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bundleSource(version, mode));
  return file;
}
