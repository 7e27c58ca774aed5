/**
 * Every master sets the V8 flags of src/core/master-flags.ts, with a fetcher or not (start.ts):
 * without them a master's own code was optimized on V8's worker threads through its handoffs and
 * their malloc arenas grew (docs/benchmarks.md §9 "Soak").
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { fixture, startMaster, type RunningMaster } from '../helpers/master.ts';

const masters: RunningMaster[] = [];
after(() => Promise.all(masters.map((master) => master.stop())));

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
