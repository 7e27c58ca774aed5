// bare.cjs with overseer's probation response counter subscribed (the child does this only while
// on probation), to measure what counting every response by status class costs per request.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = process.env.BENCH_DIST ?? path.resolve(import.meta.dirname, '../../dist');
const { ResponseCounter } = await import(pathToFileURL(path.join(dist, 'src/core/response-counter.js')).href);
// Reports go nowhere here; in a child they are one IPC message per 200 ms at most.
new ResponseCounter(() => {}).start();
createRequire(import.meta.url)('./bare.cjs');
