import { after, test } from 'node:test';
import { assertHandsOffUnderLoad } from '../helpers/load.ts';
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
    await assertHandsOffUnderLoad(master, { keepAlive: true, concurrency: 6, maxMs: 30_000 });
  });
}
