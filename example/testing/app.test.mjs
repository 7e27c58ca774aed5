// An app's own CI proving its handoffs lose nothing, with overseer/testing and node:test:
//   npm run build && node --test example/testing/
// Each test starts the app under a real master on a free loopback port (not :3000) and stops
// it, and everything it started, at the end.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatReport, startApp } from 'overseer/testing';

const script = fileURLToPath(new URL('./app.mjs', import.meta.url));
const started = [];
after(() => Promise.all(started.map((app) => app.stop())));

async function start(options) {
  const app = await startApp({ script, ...options });
  started.push(app);
  return app;
}

test('zero failed requests across 5 handoffs, keep-alive on and off', async () => {
  const app = await start();
  const report = await app.checkHandoffs({ handoffs: 5, durationMs: 1000 });
  assert.equal(report.failed, 0, formatReport(report));
  assert.ok(report.ok, formatReport(report));
});

test('a restart moves the app to a new child', async () => {
  const app = await start();
  const before = await (await fetch(app.url)).json();
  const handoff = await app.restart();
  const now = await (await fetch(app.url)).json();
  assert.equal(handoff.from, before.pid);
  assert.equal(now.pid, handoff.to);
});

test('a new release is verified, installed and served', async () => {
  const app = await start({ releases: true });
  const next = fs.readFileSync(script, 'utf8').replace("'1.0.0'", "'1.1.0'");
  const applied = await app.publish(next);
  assert.equal(applied.version, '1.1.0');
  assert.equal((await (await fetch(app.url)).json()).version, '1.1.0');
});
