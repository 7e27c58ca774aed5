/**
 * V8 flags every master sets for itself first thing in startMaster, to keep it small while idle
 * and flat through thousands of handoffs (docs/benchmarks.md §9 "Master memory" and "Soak"). Each is read by V8 when it next decides,
 * so setting it after start works; it is process-wide and never reaches the children, which get
 * only the master's command-line flags (execArgv). The master runs overseer and the top level of
 * the app's modules (its program runs in the children): what each flag does to that code is said
 * beside it.
 */
import v8 from 'node:v8';

/** WebAssembly stays on Liftoff: set by every process that loads undici (limitWasmCompilation). */
export const WASM_FLAGS: readonly string[] = [
  // undici parses HTTP with llhttp, WebAssembly. V8 compiles it with Liftoff, then, once hot,
  // again with TurboFan on a worker thread, whose ~10 MB of compile memory stayed in that
  // thread's malloc arena for the life of the master. A poll parses a few small responses and a
  // download only needs llhttp to find the body: Liftoff's code is enough (no slower here).
  '--liftoff-only',
  // Set after start, --liftoff-only no longer stops the tier-up on Node 24 (V8 13.6): llhttp's
  // hot functions were still recompiled by TurboFan, +13 MB RSS in an HTTP master (a ~10 MB
  // malloc arena of the compile thread, +3 MB of compiler pages). This flag, read at each tier-up
  // on Node 20 to 24, lets only the function of that index tier up: none has this one.
  '--wasm-tier-up-filter=2147483647',
];

/** The rest, for the master only (with a fetcher or without). */
export const MASTER_FLAGS: readonly string[] = [
  // The young generation starts at 1 MB per semi-space and doubles when much survives a
  // scavenge; once grown it stays grown (+1.5 MB after a few polls). At 1 it never grows: the
  // master scavenges more often (each scavenge is short: little lives here; a download collects
  // every 1-4 MiB anyway, see upgrade/memory.ts). The app's top-level code runs the same, with more
  // frequent young collections if it allocates a lot after this point.
  '--semi-space-growth-factor=1',
  // No optimizing tier (Maglev, TurboFan) for JavaScript from now on: after ~20 polls a hot
  // function of Node's own (the argument validators' wrapper) made V8 page in TurboFan's
  // front end, +1.1 to +1.3 MB of the node binary, for no gain in a process that waits; and
  // through a thousand handoffs the master's own code, optimized on V8's worker threads, grew
  // their malloc arenas by 1-2 MB (0.16-0.18 MB with the flags: benchmarks.md §9 "Soak"). JS keeps
  // Sparkplug's baseline code. The app's top-level code after this point is not optimized
  // either: a long loop there runs at baseline speed. A 1 GiB download takes ~15 % more CPU
  // (1.8-1.9 s against 1.6; its peak RSS is 4-5 MB lower: nothing compiles mid-download), a
  // trade worth it in a process that downloads now and then and waits for months (benchmarks.md
  // §9 "Download and staging"). Set after start, --max-opt alone
  // is not enough on Node 24 (Maglev, on there by default, and TurboFan still run): the two
  // tiers are also turned off by name.
  '--max-opt=1',
  '--no-maglev',
  '--no-turbofan',
  // Node 24 compiles Sparkplug code on a V8 worker thread (Node 20 and 22 do not). A job still
  // running when the master calls process.exit() can wait for the main thread to collect
  // garbage, while the main thread waits in exit() for that worker to end: the master never
  // exits (nodejs/node#54918). On Node 24.21, 9 in 100 stops of an `overseer run` master without
  // a fetcher hung so, none in 1,000 with this flag (docs/benchmarks.md §10). With the optimizing
  // tiers off, no other JS compile job runs on a worker thread; the master's few Sparkplug
  // batches compile on its main thread instead.
  '--no-concurrent-sparkplug',
];

let wasmLimited = false;
let set = false;

/**
 * Keeps WebAssembly compiled from now on in this process on Liftoff. The fetchers call it before
 * they load undici (in a master, or in a CLI's selfUpdate()): llhttp's tier-up left ~10 MB in a
 * compile thread's malloc arena, and Liftoff parses just as fast here (200 MB in ~0.3 s either way).
 */
export function limitWasmCompilation(): void {
  if (wasmLimited) return;
  wasmLimited = true;
  for (const flag of WASM_FLAGS) v8.setFlagsFromString(flag);
}

/** Sets WASM_FLAGS and MASTER_FLAGS once in this process; a flag this engine does not know is skipped by V8 with a message. */
export function setMasterFlags(): void {
  if (set) return;
  set = true;
  limitWasmCompilation();
  for (const flag of MASTER_FLAGS) v8.setFlagsFromString(flag);
}
