/**
 * The V8 flags a polling master sets for itself (src/core/master-flags.ts) take effect when set
 * after start: each check runs in a fresh node, once with the flags set and once without (the
 * control, which must show the effect the flag prevents, or the check proves nothing).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { MASTER_FLAGS, WASM_FLAGS } from '../../src/core/master-flags.ts';
import { scale } from '../helpers/master.ts';

const flagsUrl = pathToFileURL(path.resolve(import.meta.dirname, '../../src/core/master-flags.ts')).href;

/** How many rounds a control may take to show the effect (seconds on a loaded machine). */
const CONTROL_ROUNDS = 2_000;

/**
 * Runs `body` in a fresh node (tsx, natives syntax), after setMasterFlags() when `withFlags`
 * (or the fetchers' limitWasmCompilation() when 'wasm'); returns its JSON output.
 */
async function probe<T>(withFlags: boolean | 'wasm', body: string): Promise<T> {
  const script = `
    import v8 from 'node:v8';
    import { limitWasmCompilation, setMasterFlags } from ${JSON.stringify(flagsUrl)};
    if (${withFlags === true}) setMasterFlags();
    if (${withFlags === 'wasm'}) limitWasmCompilation();
    ${body}
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--allow-natives-syntax', '--input-type=module', '-e', script], { timeout: 30_000 * scale });
  return JSON.parse(stdout) as T;
}

test('the young generation does not grow once the flags are set', async () => {
  // Objects that survive a scavenge or two, in a volume that makes V8 grow the new space.
  const body = `
    const newSpace = () => v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').space_size;
    const before = newSpace();
    let kept = [];
    for (let i = 0; i < 400_000; i++) { kept.push({ i, text: 'x' + i }); if (kept.length > 40_000) kept = []; }
    console.log(JSON.stringify({ before, after: newSpace() }));
  `;
  const control = await probe<{ before: number; after: number }>(false, body);
  assert.ok(control.after > control.before, `without the flags the new space grows (${JSON.stringify(control)})`);
  const flagged = await probe<{ before: number; after: number }>(true, body);
  // V8 may still shrink it (it did once, 4 MB to 2 MB, on a loaded machine): only growth fails.
  assert.ok(flagged.after <= flagged.before, `the new space did not grow (${JSON.stringify(flagged)})`);
});

test('a hot function is not optimized once the flags are set', async () => {
  // %GetOptimizationStatus: bit 4 (16) is "optimized" (Maglev or TurboFan) on Node 20 to 24. The
  // control runs until the function is optimized (a loaded machine may take long to run the
  // background compile); the flagged run then gets twice the rounds the control needed.
  const body = (rounds: number) => `
    function hot(a, b) { return (a * 31 + b) | 0; }
    let sum = 0;
    let round = 0;
    for (; round < ${rounds}; round++) {
      for (let i = 0; i < 20_000; i++) sum = hot(sum, i);
      await new Promise((resolve) => setTimeout(resolve, 2));
      if (%GetOptimizationStatus(hot) & 16) break;
    }
    console.log(JSON.stringify({ status: %GetOptimizationStatus(hot), rounds: round, sum }));
  `;
  const control = await probe<{ status: number; rounds: number }>(false, body(CONTROL_ROUNDS));
  assert.ok(control.status & 16, `without the flags the function is optimized (status ${control.status} after ${control.rounds} rounds)`);
  const flagged = await probe<{ status: number }>(true, body(2 * control.rounds + 10));
  assert.equal(flagged.status & 16, 0, `the function stayed unoptimized (status ${flagged.status})`);
});

test('a hot WebAssembly function stays on Liftoff once the flags are set (llhttp, undici\'s parser)', async () => {
  // A module of one function, f(n): counts to n. Hot, it tiers up to TurboFan in the control. On
  // Node 24, --liftoff-only set after start did not stop that (docs/benchmarks.md §9). Rounds as
  // in the test above: the control runs until it tiers up, the flagged runs twice as long.
  const body = (rounds: number) => `
    const bytes = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 6, 1, 0x60, 1, 0x7f, 1, 0x7f, 3, 2, 1, 0, 7, 5, 1, 1, 0x66, 0, 0,
      0x0a, 0x1e, 1, 0x1c, 1, 1, 0x7f, 0x02, 0x40, 0x03, 0x40, 0x20, 1, 0x20, 0, 0x4e, 0x0d, 1, 0x20, 1, 0x41, 1, 0x6a, 0x21, 1, 0x0c, 0, 0x0b, 0x0b, 0x20, 1, 0x0b]);
    const { exports: { f } } = new WebAssembly.Instance(new WebAssembly.Module(bytes));
    let sum = 0;
    let round = 0;
    for (; round < ${rounds}; round++) {
      for (let i = 0; i < 20; i++) sum += f(100_000);
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (%IsTurboFanFunction(f)) break;
    }
    console.log(JSON.stringify({ liftoff: %IsLiftoffFunction(f), turbofan: %IsTurboFanFunction(f), rounds: round, sum }));
  `;
  const control = await probe<{ liftoff: boolean; turbofan: boolean; rounds: number }>(false, body(CONTROL_ROUNDS));
  assert.ok(control.turbofan, `without the flags the function tiers up (${JSON.stringify(control)})`);
  for (const flags of [true, 'wasm'] as const) {
    const flagged = await probe<{ liftoff: boolean; turbofan: boolean }>(flags, body(2 * control.rounds + 10));
    assert.deepEqual([flagged.liftoff, flagged.turbofan], [true, false], `${flags === true ? 'setMasterFlags' : 'limitWasmCompilation'}: the function stayed on Liftoff (${JSON.stringify(flagged)})`);
  }
});

test('no JavaScript compiles on a V8 worker thread once the flags are set (a compile job left there can hang process.exit)', async (t) => {
  // 40,000 small functions, each run often enough to get Sparkplug code: Node 24 compiles those
  // batches on a worker thread, where a job still running at process.exit() can wait forever
  // (docs/benchmarks.md §10). The CPU time of every thread but the main one tells where they
  // compiled. Plain node, not tsx (whose module hooks run on a thread of their own), with the
  // flags' list set the way setMasterFlags() sets it; --single-threaded-gc keeps the collector's
  // helpers out of the count.
  const run = async (flags: readonly string[]) => {
    const script = `
      import fs from 'node:fs';
      import v8 from 'node:v8';
      for (const flag of ${JSON.stringify(flags)}) v8.setFlagsFromString(flag);
      const ticks = () => new Map(fs.readdirSync('/proc/self/task').map((tid) => {
        const stat = fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return [tid, Number(fields[11]) + Number(fields[12])];
      }));
      const before = ticks();
      let sum = 0;
      for (let batch = 0; batch < 40; batch++) {
        const functions = [];
        for (let k = 0; k < 1000; k++) {
          functions.push(new Function('a', 'let s = ' + (batch * 1000 + k) + '; for (let i = 0; i < a; i++) { s = (s * 31 + i) | 0; if (s % 7 === 1) s ^= ' + k + '; if (s % 5 === 1) s += i * 3; else if (s % 3 === 2) s -= ' + k + '; } return s;'));
        }
        for (let round = 0; round < 10; round++) for (const f of functions) sum += f(20);
      }
      let workers = 0;
      for (const [tid, value] of ticks()) if (tid !== String(process.pid)) workers += value - (before.get(tid) ?? 0);
      console.log(JSON.stringify({ workers, sum }));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--single-threaded-gc', '--input-type=module', '-e', script], { timeout: 60_000 * scale });
    return (JSON.parse(stdout) as { workers: number }).workers;
  };
  const control = await run([]);
  if (control === 0) {
    t.skip(`Node ${process.versions.node} compiles on the main thread anyway: nothing to prevent`);
    return;
  }
  const flagged = await run([...WASM_FLAGS, ...MASTER_FLAGS]);
  // It read 0 in every run here (the control 10-14); a tick or two of unrelated platform work
  // must not fail it, compiling there as the control does must.
  assert.ok(flagged <= Math.floor(control / 4), `with the flags ${flagged} ticks of 10 ms on worker threads, the control ${control}`);
});
