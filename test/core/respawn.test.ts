import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Load, ask } from '../helpers/load.ts';
import { fixture, isAlive, startMaster, tempDir, until, type RunningMaster } from '../helpers/master.ts';

const app = fixture('app.mjs');
const masters: RunningMaster[] = [];
after(() => Promise.all(masters.map((master) => master.stop())));

async function start(options: object, env: Record<string, string> = {}) {
  const master = await startMaster(app, { env: { APP_OPTIONS: JSON.stringify(options), ...env } });
  masters.push(master);
  return master;
}

describe('respawn', () => {
  test('a child killed under load is replaced, and no connection is refused meanwhile', async () => {
    const master = await start({ respawn: { minDelay: 50 } });
    const first = await ask(master.port);
    const load = new Load({ port: master.port, keepAlive: false, concurrency: 8, maxMs: 30_000 });
    await until('answers before the crash', () => (load.result.answers.length > 50 ? true : undefined));
    process.kill(first.pid, 'SIGKILL');
    const scheduled = await master.waitFor('respawn-scheduled');
    assert.equal(scheduled.crashes, 1);
    const ready = await master.waitFor('child-ready', (event) => event.pid !== first.pid);
    await until('answers from the new child', () => (load.result.answers.some((answer) => answer.pid === ready.pid) ? true : undefined));
    const result = await load.stop();
    assert.deepEqual(result.failures.filter((failure) => failure.kind === 'refused'), []);
    // Only requests the killed child had already accepted can be lost.
    assert.ok(result.failures.length <= 8, JSON.stringify(result.failures));
  });

  test('a crash loop ends the master with the child\'s code', async () => {
    const dir = tempDir();
    const control = path.join(dir, 'control.json');
    const master = await start({ respawn: { minDelay: 10, maxCrashes: 2 } }, { APP_CONTROL: control });
    fs.writeFileSync(control, JSON.stringify({ mode: 'exit' }));
    await ask(master.port, '127.0.0.1', '/?exit=3');
    assert.deepEqual(await master.exited, { code: 3, signal: null });
    assert.equal(master.events.filter((event) => event.type === 'respawn-scheduled').length, 2);
  });
});

describe('master death', () => {
  test('a SIGKILLed master leaves no orphan holding the port', async () => {
    const master = await start({});
    const child = await ask(master.port);
    master.process.kill('SIGKILL');
    await master.exited;
    await until('the child to exit', () => (isAlive(child.pid) ? undefined : true), 5_000);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(master.port, '127.0.0.1', resolve);
    });
    server.close();
  });
});
