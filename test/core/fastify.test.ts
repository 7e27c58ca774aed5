import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Load } from '../helpers/load.ts';
import { fixture, startMaster, type RunningMaster } from '../helpers/master.ts';

const masters: RunningMaster[] = [];
after(() => Promise.all(masters.map((master) => master.stop())));

const wirings = {
  'state.listen': 'state.listen(app.server)',
  'fastify.listen': 'app.listen(state.listener)',
  'server.listen': 'app.server.listen(state.listener)',
} as const;

for (const [style, wiring] of Object.entries(wirings)) {
  test(`Fastify with ${wiring} serves and hands off under load with zero failed requests`, async () => {
    const master = await startMaster(fixture('fastify-server.mjs'), { env: { FASTIFY_STYLE: style } });
    masters.push(master);
    // keep-alive: the gentle drain must close Fastify's idle connections cleanly
    const load = new Load({ port: master.port, keepAlive: true, concurrency: 6, maxMs: 30_000 });
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
