// Serves on :3000 and upgrades itself from a local file. Run a copy (an upgrade replaces the
// file that runs): `cp example/fetchers/file.mjs /tmp/app.mjs && node /tmp/app.mjs`, then drop a
// new build at /tmp/incoming/app.mjs (write it elsewhere and `mv` it in: renames are atomic).
import http from 'node:http';
import { run } from 'overseer';
import { FileFetcher } from 'overseer/fetchers';

run({
  address: ':3000',
  version: '1.0.0',
  fetcher: new FileFetcher({ path: process.env.RELEASE_PATH ?? '/tmp/incoming/app.mjs' }),
  onEvent: (event) => event.type !== 'upgrade-progress' && console.log('[overseer]', event.type),
  async program(state) {
    const server = http.createServer((req, res) => {
      res.end(`app ${state.version} (${state.id.slice(0, 12)}) says hello\n`);
    });
    await state.listen(server);
    console.log(`child ${process.pid} serving ${state.address}`);
  },
});
