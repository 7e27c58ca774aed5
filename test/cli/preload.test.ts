import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanupCli, runCli, scratch } from '../helpers/cli.ts';
import { Load, ask } from '../helpers/load.ts';
import { fixture, root } from '../helpers/master.ts';
import { freePort } from '../helpers/ports.ts';
import { isNodeProgram } from '../../src/core/launch/preload.ts';
import { heldFor, listenTarget, parseSpec, type HeldSocket } from '../../src/preload/held.ts';
import { loadRunSettings } from '../../src/cli/run-settings.ts';
import { parseAppConfig } from '../../src/deploy/app-config.ts';
import { exitCodeOf } from '../helpers/exit.ts';

after(cleanupCli);

async function getText(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/`)).text();
}

/** `overseer run --listen 127.0.0.1:PORT --env PORT=… -- CMD`, once its first child is ready. */
async function runApp(command: string[], extra: string[] = []) {
  const port = await freePort();
  const run = runCli(['--listen', `127.0.0.1:${port}`, '--env', `PORT=${port}`, '--terminate-timeout', '10000', ...extra, '--', ...command]);
  await run.waitFor('child-ready', 1, 20_000);
  return { ...run, port };
}

/**
 * HANDOFFS handoffs while two loads run, keep-alive on and off: no request fails, and the answers
 * come from every child. Then a graceful stop, exit code 0. Three show what ten did: each handoff
 * runs the same preload path (the held socket taken, the drain armed), and a reused socket or a
 * child left behind shows on the first.
 */
const HANDOFFS = 3;
async function assertHandoffsUnderLoad(command: string[], extra: string[] = [], handoffs = HANDOFFS): Promise<void> {
  const run = await runApp(command, extra);
  const loads = [true, false].map((keepAlive) => new Load({ port: run.port, keepAlive, concurrency: 2, maxMs: 120_000 }));
  for (let round = 1; round <= handoffs; round++) {
    run.master.kill('SIGUSR2');
    await run.waitFor('handoff-completed', round, 30_000);
  }
  const results = await Promise.all(loads.map((load) => load.stop()));
  for (const [index, result] of results.entries()) {
    assert.deepEqual(result.failures, [], `keep-alive ${index === 0 ? 'on' : 'off'}`);
    assert.ok(result.answers.length > 0);
  }
  const pids = new Set(results.flatMap((result) => result.answers.map((answer) => answer.pid)));
  assert.ok(pids.size >= handoffs, `answers from ${pids.size} children`);
  run.master.kill('SIGTERM');
  assert.equal(await run.exited, 0);
  const exits = run.events('child-exited');
  assert.equal(exits.length, handoffs + 1);
  for (const exit of exits) assert.deepEqual([exit.code, exit.signal], [0, null], 'each child exits by itself, drained, with code 0');
}

describe('overseer run, unmodified Node apps: listen(PORT) takes the held socket', () => {
  test('http.createServer().listen(port, "0.0.0.0"): real address, ports it does not hold untouched, nothing left behind', async () => {
    const admin = await freePort();
    const run = await runApp([process.execPath, fixture('unmodified-http.mjs')], ['--env', 'LISTEN_STYLE=host', '--env', `ADMIN_PORT=${admin}`, '--env', 'NODE_OPTIONS=--no-deprecation']);
    const seen = await ask(run.port) as unknown as {
      pid: number; address: net.AddressInfo; side: number; admin: number; preloadEnv: string | null; nodeOptions: string | null; execArgv: string[]; listenPatched: boolean;
    };
    assert.equal(seen.pid, run.events('child-ready')[0]?.pid);
    assert.deepEqual(seen.address, { address: '127.0.0.1', family: 'IPv4', port: run.port }, 'server.address() is the held socket');
    assert.equal(seen.admin, admin);
    assert.equal(await getText(admin), 'admin', 'a listen on a port overseer does not hold binds its own');
    assert.notEqual(seen.side, run.port);
    assert.equal(await getText(seen.side), 'side', 'port 0 is untouched');
    assert.equal(seen.preloadEnv, null, 'the sockets map is gone from process.env');
    assert.equal(seen.nodeOptions, '--no-deprecation', "the user's NODE_OPTIONS, without the preload");
    assert.deepEqual(seen.execArgv, []);
    assert.equal(seen.listenPatched, false, 'listen() is the original again once every held socket serves');
    run.master.kill('SIGTERM');
    assert.equal(await run.exited, 0);
  });

  test('plain http app: 3 handoffs under load, keep-alive on and off, no failed request', async () => {
    await assertHandoffsUnderLoad([process.execPath, fixture('unmodified-http.mjs')]);
  });

  test('Express 5 app.listen(port): 3 handoffs under load, no failed request', async () => {
    await assertHandoffsUnderLoad([process.execPath, fixture('unmodified-express.mjs')]);
  });

  test('Fastify 5 listen({ port }): 3 handoffs under load, no failed request', async () => {
    await assertHandoffsUnderLoad([process.execPath, fixture('unmodified-fastify.mjs')]);
  });

  test('an app with its own SIGTERM handler (server.close(cb), then exit): its close waits for the drain, no request fails', async () => {
    await assertHandoffsUnderLoad([process.execPath, fixture('unmodified-http.mjs')], ['--env', 'OWN_SIGTERM=1'], 3);
  });

  test('a CommonJS app and a TypeScript app under node --import tsx hand off', async () => {
    for (const command of [[process.execPath, fixture('unmodified-http.cjs')], [process.execPath, '--import', 'tsx', fixture('unmodified-http.ts')]]) {
      const run = await runApp(command);
      const first = await ask(run.port) as unknown as { pid: number; address: net.AddressInfo; module?: string; execArgv?: string[] };
      assert.equal(first.address.port, run.port);
      if (first.execArgv) assert.deepEqual(first.execArgv, ['--import', 'tsx'], 'only the app\'s own flags in execArgv');
      else assert.equal(first.module, 'function');
      run.master.kill('SIGUSR2');
      await run.waitFor('handoff-completed', 1, 30_000);
      assert.notEqual((await ask(run.port)).pid, first.pid);
      run.master.kill('SIGTERM');
      assert.equal(await run.exited, 0);
    }
  });

  test('--no-preload: the app binds the port itself and fails on EADDRINUSE', async () => {
    const port = await freePort();
    const master = spawn(process.execPath, [path.join(root, 'dist/src/cli/main.js'), 'run', '--no-preload', '--listen', `127.0.0.1:${port}`, '--env', `PORT=${port}`, '--', process.execPath, fixture('unmodified-http.mjs')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    master.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await exitCodeOf(master, 'overseer run --no-preload', () => stderr);
    assert.match(stderr, /EADDRINUSE/);
    assert.notEqual(code, 0);
  });
});

describe('the preload: which listen() calls and which commands', () => {
  const tcp: HeldSocket = { fd: 3, port: 3000, host: null };
  const local: HeldSocket = { fd: 4, port: 4000, host: '127.0.0.1' };
  const unix: HeldSocket = { fd: 5, path: '/run/app.sock' };
  const held = [tcp, local, unix];
  const match = (...args: unknown[]) => heldFor(listenTarget(args), held, (file) => path.resolve('/srv', file))?.fd;

  test('listen() forms that match a held socket, and those that do not', () => {
    assert.equal(match(3000), 3);
    assert.equal(match('3000'), 3);
    assert.equal(match(3000, '0.0.0.0', () => {}), 3);
    assert.equal(match({ port: 3000, host: '::' }), 3);
    assert.equal(match(4000, 'localhost'), 4);
    assert.equal(match(4000, '0.0.0.0'), 4);
    assert.equal(match({ port: 4000 }), 4);
    assert.equal(match(4000, '10.0.0.5'), undefined, 'another interface is not the held one');
    assert.equal(match('/run/app.sock'), 5);
    assert.equal(match({ path: '../run/app.sock' }), 5);
    assert.equal(match({ fd: 3 }), 3);
    for (const other of [[], [0], [() => {}], [{ port: 0 }], [3001], [{ handle: {} }], ['/tmp/other.sock'], [null], [{ port: 'abc' }], [70000]]) {
      assert.equal(match(...other), undefined, JSON.stringify(other));
    }
  });

  test('the spec from the environment: garbage is ignored', () => {
    for (const bad of [undefined, '', 'nope', '{}', '[]', '{"sockets":[{"fd":0,"port":1,"host":null}],"readyFd":null,"stopSignal":"SIGTERM","terminateTimeout":1,"nodeOptions":null}']) {
      assert.equal(parseSpec(bad), undefined, String(bad));
    }
    const good = { sockets: [tcp, unix], readyFd: 6, stopSignal: 'SIGTERM', terminateTimeout: 1000, nodeOptions: null };
    assert.deepEqual(parseSpec(JSON.stringify(good)), good);
  });

  test('Node programs: node and its aliases, a node shebang; not npm or tsx, not python', () => {
    const dir = scratch();
    const script = (name: string, head: string) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, `${head}\nconsole.log(1)\n`, { mode: 0o755 });
      return file;
    };
    assert.ok(isNodeProgram(process.execPath));
    assert.ok(isNodeProgram('/opt/node22/bin/node'));
    assert.ok(isNodeProgram(script('server', '#!/usr/bin/env node')));
    assert.ok(isNodeProgram(script('server2', '#!/usr/bin/env -S node --enable-source-maps')));
    assert.ok(isNodeProgram(script('server3', '#!/usr/local/bin/node')));
    assert.ok(!isNodeProgram(script('npm', '#!/usr/bin/env node')));
    assert.ok(!isNodeProgram(script('server.py', '#!/usr/bin/env python3')));
    assert.ok(!isNodeProgram(script('nodejs-tool.sh', '#!/bin/sh')));
    assert.ok(!isNodeProgram(path.join(dir, 'missing')));
  });

  test('the flag, the config file key and app.json turn it off', async () => {
    const dir = scratch();
    const app = path.join(dir, 'server.mjs');
    fs.writeFileSync(app, '');
    const file = path.join(dir, 'overseer.config.json');
    fs.writeFileSync(file, JSON.stringify({ listeners: [':0'], command: ['node', 'server.mjs'], preload: false }));
    const settings = async (argv: string[]) => {
      const loaded = await loadRunSettings(argv);
      assert.notEqual(loaded, 'help');
      return loaded === 'help' ? undefined : loaded.preload;
    };
    assert.equal(await settings(['-c', file]), false);
    assert.equal(await settings(['-c', file, '--preload']), true);
    assert.equal(await settings(['--listen', ':0', '--', 'node', app]), true);
    assert.equal(await settings(['--listen', ':0', '--no-preload', '--', 'node', app]), false);
    assert.equal(await settings(['--listen', ':0', '--', 'sh', app]), false, 'not a Node program');
    fs.writeFileSync(file, JSON.stringify({ command: ['node', 'server.mjs'], preload: 'no' }));
    await assert.rejects(loadRunSettings(['-c', file]), /preload/);
    assert.equal(parseAppConfig({ command: ['node', 'server.mjs'] }, 'web/app.json').preload, true);
    assert.equal(parseAppConfig({ command: ['node', 'server.mjs'], preload: false }, 'web/app.json').preload, false);
    assert.throws(() => parseAppConfig({ command: ['node'], preload: 1 }, 'web/app.json'), /web\/app.json: preload/);
  });
});
