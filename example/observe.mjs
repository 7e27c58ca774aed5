// Observing and stopping a master from code, without onEvent. Run it, then:
//   kill -USR2 <master pid>   → the handoff is logged from its diagnostics_channel, then the
//                               master's idle collection (the memory it gave back, its cost)
// It stops itself after STOP_AFTER_MS (default 20 s) through config.signal, as SIGTERM would.
import diagnosticsChannel from 'node:diagnostics_channel';
import http from 'node:http';
import { run } from 'overseer';

const stop = new AbortController();
if (process.env.OVERSEER_ROLE === undefined) {
  // In the master only: an APM agent or logger would subscribe the same way.
  diagnosticsChannel.subscribe('overseer:master-started', (event) => console.log(`master ${event.pid} on ${event.addresses.join(', ')}`));
  diagnosticsChannel.subscribe('overseer:handoff-completed', (event) => console.log(`handoff ${event.from} → ${event.to} in ${event.timings.totalMs} ms`));
  // Once the master is quiet after work (here: the handoff), it gives memory back (at most every 30 s).
  diagnosticsChannel.subscribe('overseer:idle-collection', (message) => console.log(`master gave memory back: RSS ${(message.rssBefore / 1048576).toFixed(1)} → ${(message.rssAfter / 1048576).toFixed(1)} MB in ${message.durationMs.toFixed(1)} ms`));
  diagnosticsChannel.subscribe('overseer:master-exiting', (event) => console.log(`master exiting with ${event.code} (${event.reason})`));
  setTimeout(() => stop.abort(), Number(process.env.STOP_AFTER_MS ?? 20_000)).unref();
}

run({
  address: process.env.ADDRESS ?? ':3000',
  signal: stop.signal,
  async program(state) {
    await state.listen(http.createServer((req, res) => res.end(`child ${process.pid}\n`)));
  },
});
