import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { Load } from '../helpers/load.ts';
import { fixture, root, startMaster, type RunningMaster } from '../helpers/master.ts';

const masters: RunningMaster[] = [];
after(() => Promise.all(masters.map((master) => master.stop())));
const ca = fs.readFileSync(`${root}/test/fixtures/tls/cert.pem`);

for (const kind of ['http', 'https', 'net', 'express'] as const) {
  describe(`${kind} server`, () => {
    for (const style of ['state.listen', 'server.listen'] as const) {
      test(`${style === 'state.listen' ? 'state.listen(server)' : 'server.listen(state.listener)'} serves and hands off with zero failed requests`, async () => {
        const master = await startMaster(fixture('servers.mjs'), { env: { SERVER_KIND: kind, LISTEN_STYLE: style } });
        masters.push(master);
        // keep-alive where the server speaks it: the gentle drain must close those connections cleanly
        const load = new Load({ port: master.port, keepAlive: kind !== 'net', concurrency: 6, maxMs: 30_000, ...(kind === 'https' ? { ca } : {}) });
        for (let round = 1; round <= 3; round++) {
          master.process.kill('SIGUSR2');
          await master.waitFor('handoff-completed', () => master.events.filter((event) => event.type === 'handoff-completed').length >= round);
        }
        const result = await load.stop();
        assert.deepEqual(result.failures, []);
        const pids = new Set(result.answers.map((answer) => answer.pid));
        assert.ok(pids.size >= 3, `answers from ${pids.size} children`);
        // The old children drained instead of waiting out terminateTimeout.
        for (const event of master.events) {
          if (event.type === 'handoff-completed') assert.ok(event.timings.drainMs < 10_000, `drain took ${event.timings.drainMs} ms`);
        }
      });
    }
  });
}
