/**
 * Keeps the master's memory flat while a release streams through it. Every socket read is a
 * fresh buffer that V8 frees only at its next collection, and V8 lets such external memory
 * pile up by tens of MB before it collects on its own: a young-generation collection every few
 * MB received keeps the pile small (measured: 200 MB download, +40 MB RSS without, see bench/).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type Collect = (options?: { type: 'minor' | 'major'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;

let collect: Collect | null | undefined;

/** V8's `gc` extension, reached without giving the app's global scope a `gc`; null if V8 refuses. */
function gcFunction(): Collect | null {
  if (collect === undefined) {
    try {
      // The flag only reaches contexts made after it: the app's global scope gets no `gc`.
      v8.setFlagsFromString('--expose-gc');
      collect = vm.runInNewContext('gc') as Collect;
    } catch {
      collect = null;
    }
  }
  return collect;
}

/** Collects the young generation, where spent read buffers sit; a no-op if V8 refuses. */
export function collectYoungGarbage(): void {
  gcFunction()?.({ type: 'minor' });
}

/** V8 12 (Node 22) on reads gc()'s options; V8 11.3 (Node 20) takes any object as `gc(true)`, a scavenge. */
const GC_OPTIONS = Number(process.versions.v8.split('.')[0]) >= 12;
/** Whoever started node asked for compaction on every full GC: leave it on. */
const COMPACTING = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((arg) => /(?:^|\s)--compact[-_]on[-_]every[-_]full[-_]gc(?![-_\w])/.test(arg));

/**
 * A memory-reducing full collection, where a plain full GC frees objects but keeps (or even
 * grows) their pages. Node 22 and 24: V8's "last resort" collection (mark-compacts with
 * compaction until nothing more frees, free pages returned). Node 20's V8 has no such option in
 * its gc(): two full GCs with compaction of every page turned on for them. Measured on an
 * HttpFetcher master's heap (docs/benchmarks.md §9): Node 20 −0.8–1.0 MB RSS for 25–35 ms of
 * CPU, Node 22/24 −5 MB for 20–30 ms. For a master gone quiet (core/idle-gc.ts).
 */
export function releaseMemory(): void {
  const gc = gcFunction();
  if (!gc) return;
  if (GC_OPTIONS) {
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    return;
  }
  v8.setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
    gc();
  } finally {
    if (!COMPACTING) v8.setFlagsFromString('--no-compact-on-every-full-gc');
  }
}

/** A pacer: call it with the bytes seen so far; call `idle` when the reader waits anyway. */
export interface CollectionPacer {
  (total: number): void;
  /** The reader is about to wait (its write is still out): collect early, if `idleEvery` bytes came since the last collection. */
  idle(total: number): void;
}

/**
 * Calls collectYoungGarbage() once per `every` bytes seen, or earlier, from `idleEvery` bytes
 * on, at a moment the reader would wait anyway: a collection there costs the download no time,
 * where one between two socket reads holds the socket up for it.
 */
export function createCollectionPacer(every: number, idleEvery: number = every, collect: () => void = collectYoungGarbage): CollectionPacer {
  let last = 0;
  const at = (total: number, gap: number): void => {
    if (total - last < gap) return;
    last = total;
    collect();
  };
  return Object.assign((total: number) => at(total, every), { idle: (total: number) => at(total, idleEvery) });
}

/**
 * How a release download collects: when the body waits for a write (write-body.ts), once 1 MiB
 * came since the last collection, and at the latest every 4 MiB. Measured on 1 GiB
 * (docs/benchmarks.md §9): peak RSS growth +7.4–8.6 MB against +8.4–10.7 with a collection every
 * 2 MiB wherever it fell, at the same CPU per GiB.
 */
export function createDownloadPacer(): CollectionPacer {
  return createCollectionPacer(4 * 1024 * 1024, 1024 * 1024);
}
