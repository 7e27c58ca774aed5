// An app on probation: serves on :3000 (PORT), upgrades itself from a local file, and each new
// build must hold for 10 s after its handoff or the previous one comes back.
// Run a copy (an upgrade replaces the file that runs):
//   cp example/probation/app.mjs /tmp/app.mjs && node /tmp/app.mjs
// then publish a build that crashes 2 s after it is ready (write elsewhere, mv in):
//   sed -e "s/^const VERSION = .*/const VERSION = '2.0.0';/" -e "s/^const MODE = .*/const MODE = 'crash';/" /tmp/app.mjs > /tmp/next.mjs
//   mkdir -p /tmp/incoming && mv /tmp/next.mjs /tmp/incoming/app.mjs
// or one that answers 500 to a third of requests (MODE = 'errors'), or reports itself
// unhealthy (MODE = 'unhealthy'); `example/probation/demo.mjs` does all of it for you.
import http from 'node:http';
import { run } from 'overseer';
import { FileFetcher } from 'overseer/fetchers';

const VERSION = '1.0.0';
const MODE = 'good';

run({
  address: `:${process.env.PORT ?? 3000}`,
  version: VERSION,
  fetcher: new FileFetcher({ path: process.env.RELEASE_PATH ?? '/tmp/incoming/app.mjs', interval: 500 }),
  minFetchInterval: 200,
  // The defaults, but shorter, and a health probe for good measure.
  probation: { duration: 10_000, maxErrorRatio: 0.1, minRequests: 20, probe: { path: '/health', interval: 500, failures: 3 } },
  onEvent(event) {
    if (event.type === 'probation-failed') console.log(`[overseer] probation failed (${event.cause}): ${event.error}`, event.evidence);
    else if (event.type === 'upgrade-rolled-back') console.log(`[overseer] rolled back ${event.sha256.slice(0, 12)}: the previous build serves again`);
    else if (event.type.startsWith('probation-') || event.type === 'upgrade-applied') console.log(`[overseer] ${event.type}`);
  },
  async program(state) {
    let served = 0;
    const server = http.createServer((req, res) => {
      if (req.url !== '/health' && MODE === 'errors' && ++served % 3 === 0) res.statusCode = 500;
      res.end(`app ${VERSION} (${MODE}) from child ${process.pid}\n`);
    });
    await state.listen(server);
    if (MODE === 'crash') setTimeout(() => process.exit(1), 2000);
    if (MODE === 'unhealthy') setTimeout(() => state.reportUnhealthy('its cache never warmed up'), 1000);
  },
});
