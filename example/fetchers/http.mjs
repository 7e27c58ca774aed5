// Serves on :3000 and upgrades itself from a URL. Run a copy (an upgrade replaces the file that
// runs): `cp example/fetchers/http.mjs /tmp/app.mjs && node /tmp/app.mjs`, then publish a new
// build at RELEASE_URL (with RELEASE_URL.sha256 next to it if RELEASE_SHA256 is set).
import http from 'node:http';
import { run } from 'overseer';
import { HttpFetcher } from 'overseer/fetchers';

const url = process.env.RELEASE_URL ?? 'http://127.0.0.1:4000/releases/app.mjs';

run({
  address: ':3000',
  version: '1.0.0',
  fetcher: new HttpFetcher({
    url,
    interval: 5000,
    timeout: 10_000,
    sha256Url: process.env.RELEASE_SHA256 ? `${url}.sha256` : undefined,
  }),
  onEvent: (event) => event.type !== 'upgrade-progress' && console.log('[overseer]', event.type),
  async program(state) {
    const server = http.createServer((req, res) => {
      res.end(`app ${state.version} (${state.id.slice(0, 12)}) says hello\n`);
    });
    await state.listen(server);
    console.log(`child ${process.pid} serving ${state.address}`);
  },
});
