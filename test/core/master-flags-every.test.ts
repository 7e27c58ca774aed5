/**
 * Every master sets the V8 flags of src/core/master-flags.ts, with a fetcher or not (start.ts):
 * without them a master's own code was optimized on V8's worker threads through its handoffs and
 * their malloc arenas grew (docs/benchmarks.md §9 "Soak"), and on Node 24 a master could hang in
 * process.exit() (§10).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { cleanupCli, runCli } from '../helpers/cli.ts';
import { threadsOf } from '../helpers/exit.ts';
import { fixture, startMaster, until, type RunningMaster } from '../helpers/master.ts';
import { freePort } from '../helpers/ports.ts';

const masters: RunningMaster[] = [];
after(() => Promise.all(masters.map((master) => master.stop())));
after(cleanupCli);

interface HotResult {
  readonly type: 'hot-result';
  readonly status: number;
  readonly rounds: number;
}

test('a master without a fetcher does not optimize its own hot code (the control, a plain process, does)', async () => {
  // The control runs until the function is optimized; the master then gets twice its rounds.
  const control = spawn(process.execPath, ['--allow-natives-syntax', fixture('hot-master.mjs')], { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [message] = (await once(control, 'message')) as [{ event: HotResult }];
  await once(control, 'exit');
  const controlResult = message.event;
  assert.ok(controlResult.status & 16, `without a master the function is optimized (status ${controlResult.status} after ${controlResult.rounds} rounds)`);
  const master = await startMaster(fixture('hot-master.mjs'), { execArgv: ['--allow-natives-syntax'], env: { HOT_RUN: '1', HOT_ROUNDS: String(2 * controlResult.rounds + 10) } });
  masters.push(master);
  const result = (await master.waitFor('hot-result' as never, undefined, 120_000)) as unknown as HotResult;
  assert.equal(result.status & 16, 0, `in the master the function stayed unoptimized (status ${result.status} after ${result.rounds} rounds)\n${master.report()}`);
  await master.stop();
});

test('a master exits on SIGTERM, stop after stop (no V8 compile job left waiting in process.exit)', async () => {
  // The whole path, end to end: Node 24 compiled the master's code on a worker thread, and 9 in
  // 100 masters hung in process.exit() (docs/benchmarks.md §10). Without the flag this failed in
  // 2 of 3 runs (and in 1 of 6 with 32 stops); master-flags.test.ts checks the flag itself, every time.
  const STOPS = 16;
  const app = "require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT))";
  const stopOne = async () => {
    const port = await freePort();
    const run = runCli(['--listen', `127.0.0.1:${port}`, '--env', `PORT=${port}`, '--', process.execPath, '-e', app]);
    await run.waitFor('child-ready', 1, 20_000);
    run.master.kill('SIGTERM');
    const code = await until('the master\'s exit after SIGTERM', () => run.master.exitCode ?? run.master.signalCode ?? undefined, 20_000, () => `${threadsOf(run.master.pid)}\n${run.stderr()}`);
    assert.equal(code, 0, run.stderr());
  };
  for (let round = 0; round < STOPS / 4; round++) await Promise.all([stopOne(), stopOne(), stopOne(), stopOne()]);
});
