/**
 * A polling master parses HTTP with undici's llhttp, which is WebAssembly. V8 compiles it with
 * Liftoff, then, once it runs hot, again with TurboFan on a background thread; that compile's
 * ~10 MB of memory stays in the thread's malloc arena for the life of the master (seen in
 * /proc/<pid>/smaps as one anonymous mapping, in most runs; docs/benchmarks.md §9 "Master
 * memory"). A master parses a few small responses per poll, and of a download llhttp only finds
 * where the body bytes are: Liftoff's code is enough. The flag is process-wide, set only in a
 * master that polls: it runs overseer and the app's top-level imports, while the program runs in
 * children, which get only the master's command-line flags (execArgv), not this one.
 */
import v8 from 'node:v8';

let set = false;

/** Keeps WebAssembly compiled from now on in this process on Liftoff (no TurboFan tier-up). */
export function keepWasmOnLiftoff(): void {
  if (set) return;
  set = true;
  v8.setFlagsFromString('--liftoff-only');
}
