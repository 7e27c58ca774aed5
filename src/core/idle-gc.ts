/**
 * Gives memory back once the master goes quiet after work. A master's work (a poll, a download
 * and upgrade, a handoff or restart) leaves garbage and freed pages behind; V8's ordinary
 * collections reclaim the objects but keep the pages, so RSS stays at its high-water mark. One
 * memory-reducing collection (memory.ts releaseMemory: V8's "last resort" full GC on Node 22 and
 * 24, compacting full GCs on Node 20) once the work is over gives them back.
 *
 * The policy, in one place:
 * - Work is anything the master reports (each of its events) from its first child's ready on, and
 *   each poll's end; `busy()` says whether work is still under way (a poll or download, a child
 *   starting or draining). The start alone does not count (master.ts says why).
 * - A collection runs QUIET_MS after the last work ended, only if nothing is under way then
 *   (never mid-handoff, never mid-download), and only if there was work since the last one.
 * - At most one per MIN_GAP_MS: a master polling every 200 ms collects about twice a minute, not
 *   after every poll; one polling every 5 minutes collects once after each poll. A burst of
 *   handoffs is collected once, after its last one.
 *
 * Its cost (docs/benchmarks.md §9, 2 cores): 12–30 ms of main-thread time, 20–31 ms of CPU, on
 * a polling master's ~10 MB heap (Node 20–24), so at most ~0.1 % of one core at the 30 s cap;
 * it grows with the heap.
 */
import dc from 'node:diagnostics_channel';
import { releaseMemory } from '../upgrade/memory.js';

/** After the last work ended, this long with nothing under way before the collection runs. */
export const QUIET_MS = 100;
/** The least time between two collections. */
export const MIN_GAP_MS = 30_000;
/** While work is under way, how often the backstop looks again (a long download, a probation). */
const BUSY_RECHECK_MS = 1_000;

/** Published after each collection: `{ durationMs, cpuMs, rssBefore, rssAfter }` (bytes). */
export const IDLE_COLLECTION_CHANNEL = 'overseer:idle-collection';
const channel = dc.channel(IDLE_COLLECTION_CHANNEL);

export interface IdleCollectionMessage {
  /** Wall time the collection took, ms. */
  readonly durationMs: number;
  /** CPU time of the process during it (all threads), ms. */
  readonly cpuMs: number;
  readonly rssBefore: number;
  readonly rssAfter: number;
}

export interface IdleCollectorOptions {
  /** True while work is under way; the collection waits for its end. */
  readonly busy: () => boolean;
  readonly quietMs?: number;
  readonly minGapMs?: number;
  /** The collection itself (tests count calls). */
  readonly collect?: () => void;
}

export class IdleCollector {
  readonly #busy: () => boolean;
  readonly #quietMs: number;
  readonly #minGapMs: number;
  readonly #collect: () => void;
  #timer: NodeJS.Timeout | undefined;
  /** Work happened since the last collection. */
  #dirty = false;
  #last = Number.NEGATIVE_INFINITY;
  #stopped = false;

  constructor(options: IdleCollectorOptions) {
    this.#busy = options.busy;
    this.#quietMs = options.quietMs ?? QUIET_MS;
    this.#minGapMs = options.minGapMs ?? MIN_GAP_MS;
    this.#collect = options.collect ?? releaseMemory;
  }

  /** Some work happened or ended: collect once it is quiet (restarts the quiet wait). */
  activity(): void {
    if (this.#stopped) return;
    this.#dirty = true;
    this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #arm(wait = this.#quietMs): void {
    clearTimeout(this.#timer);
    const now = Date.now();
    const at = Math.max(now + wait, this.#last + this.#minGapMs);
    // unref: a pending collection never keeps the master alive.
    this.#timer = setTimeout(() => this.#fire(), at - now).unref();
  }

  #fire(): void {
    this.#timer = undefined;
    if (this.#stopped || !this.#dirty) return;
    // Work under way ends with an event or a poll's end, which re-arms; this is a backstop.
    if (this.#busy()) {
      this.#arm(Math.max(this.#quietMs, BUSY_RECHECK_MS));
      return;
    }
    this.#dirty = false;
    const rssBefore = channel.hasSubscribers ? process.memoryUsage.rss() : 0;
    const cpu = process.cpuUsage();
    const started = performance.now();
    this.#collect();
    const durationMs = performance.now() - started;
    this.#last = Date.now();
    if (channel.hasSubscribers) {
      const spent = process.cpuUsage(cpu);
      channel.publish({
        durationMs,
        cpuMs: (spent.user + spent.system) / 1000,
        rssBefore,
        rssAfter: process.memoryUsage.rss(),
      } satisfies IdleCollectionMessage);
    }
  }
}
