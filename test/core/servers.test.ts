import fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { assertHandsOffUnderLoad } from '../helpers/load.ts';
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
        await assertHandsOffUnderLoad(master, { keepAlive: kind !== 'net', concurrency: 6, maxMs: 30_000, ...(kind === 'https' ? { ca } : {}) });
      });
    }
  });
}
