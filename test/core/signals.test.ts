import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { Load, ask } from '../helpers/load.ts';
import { fixture, isAlive, startMaster, until, type RunningMaster } from '../helpers/master.ts';
import { exitCodeOf } from '../helpers/exit.ts';

const app = fixture('app.mjs');
const masters: RunningMaster[] = [];
after(() => Promise.all(masters.map((master) => master.stop())));

async function start(env: Record<string, string> = {}) {
  const master = await startMaster(app, { env });
  masters.push(master);
  return master;
}

const count = (text: string, line: string) => text.split('\n').filter((item) => item.includes(line)).length;

describe('signals and exit codes', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} drains the child gracefully under load and the master exits 0`, async () => {
      const master = await start();
      const child = await ask(master.port);
      const load = new Load({ port: master.port, keepAlive: true, concurrency: 4, maxRequests: 200 });
      await until('some answers', () => (load.result.answers.length > 20 ? true : undefined));
      master.process.kill(signal);
      const exit = await master.exited;
      await load.stop();
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.equal(count(master.output.stdout, `child ${child.pid} got ${signal}`), 1);
      const exited = master.events.find((event) => event.type === 'child-exited');
      assert.equal(exited?.type === 'child-exited' && exited.expected, true);
      // Requests cut off by the stop may fail; none may have been half-answered.
      assert.ok(load.result.failures.every((failure) => failure.kind === 'refused' || failure.kind === 'reset'));
    });
  }

  test('the child exit code passes through the master', async () => {
    const master = await start();
    await ask(master.port, '127.0.0.1', '/?exitCode=7');
    master.process.kill('SIGTERM');
    assert.deepEqual(await master.exited, { code: 7, signal: null });
  });

  test('a child killed by a signal makes the master exit 128+N', async () => {
    const master = await start();
    await ask(master.port, '127.0.0.1', '/?signal=SIGKILL').catch(() => undefined);
    assert.deepEqual(await master.exited, { code: 137, signal: null });
  });

  test('a child that exits on its own makes the master exit with its code', async () => {
    const master = await start();
    await ask(master.port, '127.0.0.1', '/?exit=5');
    assert.deepEqual(await master.exited, { code: 5, signal: null });
    const exited = master.events.find((event) => event.type === 'child-exited');
    assert.equal(exited?.type === 'child-exited' && exited.expected, false);
  });

  test('SIGHUP, SIGQUIT-style signals are forwarded to the serving child', async () => {
    const master = await start();
    const child = await ask(master.port);
    master.process.kill('SIGHUP');
    await until('SIGHUP in the child', () => (count(master.output.stdout, `child ${child.pid} got SIGHUP`) === 1 ? true : undefined));
    assert.equal((await ask(master.port)).pid, child.pid, 'the child handled it and keeps serving');
  });

  test('Ctrl-C in a terminal (SIGINT to the whole process group) reaches the child once', async () => {
    // The master leads its own process group here, as a shell's foreground job would.
    const proc = spawn(process.execPath, [app], { detached: true, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env } });
    let stdout = '';
    proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const exited = exitCodeOf(proc, 'master', () => stdout);
    try {
      const port = await new Promise<number>((resolve) => {
        proc.on('message', (message: { event?: { type: string; addresses?: string[] } }) => {
          if (message.event?.type === 'child-ready') resolve(Number(started.split(':').pop()));
          if (message.event?.type === 'master-started') started = message.event.addresses?.[0] ?? '';
        });
        let started = '';
      });
      const child = await ask(port);
      process.kill(-(proc.pid ?? 0), 'SIGINT');
      assert.equal(await exited, 0);
      assert.equal(count(stdout, `child ${child.pid} got SIGINT`), 1, stdout);
    } finally {
      if (proc.exitCode === null) process.kill(-(proc.pid ?? 0), 'SIGKILL');
    }
  });

  test('the app\'s own process.send messages do not disturb the master', async () => {
    const master = await start();
    const child = await ask(master.port, '127.0.0.1', '/?send=1');
    assert.equal((await ask(master.port)).pid, child.pid);
    assert.ok(isAlive(master.pid));
  });
});
