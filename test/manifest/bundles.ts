/**
 * Tiny served apps that poll through a ManifestFetcher: its options come in APP_MANIFEST (JSON),
 * the trusted keys in APP_PUBLIC_KEYS (a JSON array). Each answers with its pid and version.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from '../helpers/master.ts';

const indexUrl = pathToFileURL(path.join(root, 'dist/src/index.js')).href;
const manifestUrl = pathToFileURL(path.join(root, 'dist/fetchers/manifest.js')).href;

export function manifestBundle(version: string): string {
  return `// release ${version}
import http from 'node:http';
import { run } from ${JSON.stringify(indexUrl)};
import { ManifestFetcher } from ${JSON.stringify(manifestUrl)};
const env = process.env;
run({
  address: env.APP_ADDRESS ?? '127.0.0.1:0',
  version: ${JSON.stringify(version)},
  minFetchInterval: 50,
  verify: { publicKey: JSON.parse(env.APP_PUBLIC_KEYS) },
  fetcher: new ManifestFetcher(JSON.parse(env.APP_MANIFEST)),
  onEvent: (event) => process.send?.({ event }),
  async program(state) {
    const server = http.createServer((req, res) => res.end(JSON.stringify({ pid: process.pid, id: state.id, version: state.version ?? null })));
    await state.listen(server);
  },
});
`;
}
