// A served app under overseer. Run it, then in another terminal:
//   curl localhost:3000            → which child (pid) and version answered
//   kill -USR2 <master pid>        → ready-first handoff to a fresh child, no request lost
//   kill -TERM <master pid>        → graceful stop
// Set RELEASE_URL to poll an HTTP release source for new builds of this very file.
import { run } from 'overseer';
import { HttpFetcher } from 'overseer/fetchers';

// This top level also runs in the master: on Node 22 and 24 an ESM import of node:http would load
// Node's own undici there (+10-14 MB, README "Limits"); getBuiltinModule does not.
const http = process.getBuiltinModule('node:http');

const VERSION = '1.0.0';
const url = process.env.RELEASE_URL;

run({
  address: process.env.ADDRESS ?? ':3000',
  version: VERSION,
  // On a handoff the old child moves its keep-alive clients over one by one within this window
  // (ms), so they do not all land on the cold new child at once. 'auto' (the default): 500 ms,
  // 1 ms per connection beyond 500; DRAIN_SPREAD=0 moves them all at once.
  drainSpread: process.env.DRAIN_SPREAD === undefined ? 'auto' : Number(process.env.DRAIN_SPREAD),
  ...(url ? { fetcher: new HttpFetcher({ url, interval: Number(process.env.RELEASE_INTERVAL ?? 5000) }), minFetchInterval: 200 } : {}),
  onEvent(event) {
    const detail = {
      'master-started': () => `master ${event.pid} listening on ${event.addresses.join(', ')}`,
      'child-ready': () => `child ${event.pid} ready in ${event.bootMs} ms`,
      'child-exited': () => `child ${event.pid} exited (${event.signal ?? `code ${event.code}`})`,
      'handoff-completed': () => `handoff ${event.from} → ${event.to} (${event.reason}): ready after ${event.timings.readyMs} ms, old drained in ${event.timings.drainMs} ms`,
      'handoff-failed': () => `handoff failed, child ${event.pid} stays out: ${event.error}`,
      'upgrade-applied': () => `upgraded to ${event.version} (poll ${event.timings.pollMs} ms, download ${event.timings.downloadMs} ms, verify ${event.timings.verifyMs} ms, check ${event.timings.checkMs} ms, swap ${event.timings.swapMs} ms, handoff ${event.timings.handoffMs} ms)`,
      'upgrade-rejected': () => `release refused: ${event.error}`,
      'upgrade-rolled-back': () => `release rolled back: ${event.error}`,
    }[event.type];
    if (detail) console.log(`[overseer] ${detail()}`);
  },
  async program(state) {
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ version: state.version, pid: process.pid, id: state.id.slice(0, 12) }) + '\n');
    });
    await state.listen(server);
    state.shutdown.addEventListener('abort', () => console.log(`[app ${VERSION}] child ${process.pid} draining`));
  },
});
