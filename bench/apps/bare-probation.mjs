// bare.cjs with overseer's probation response counter subscribed (the child does this only while
// on probation), to measure what counting every response by status class costs per request.
import { createRequire } from 'node:module';

// bench/probation.ts passes the module's URL (bench/lib/internal.ts: the bundled build has no file per module).
const { ResponseCounter } = await import(process.env.BENCH_RESPONSE_COUNTER_MODULE);
// Reports go nowhere here; in a child they are one IPC message per 200 ms at most.
new ResponseCounter(() => {}).start();
createRequire(import.meta.url)('./bare.cjs');
