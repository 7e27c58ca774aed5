// Child of stop-start-master.mjs: serves the shared handler on the master's handle; on 'drain'
// it drains with overseer's Drainer, says 'closed' once its listener is closed, and exits when drained.
import http from 'node:http';
import { createRequire } from 'node:module';

// bench/lib/contenders.ts passes the module's URL (bench/lib/internal.ts: the bundled build has no file per module).
const { Drainer } = await import(process.env.BENCH_DRAIN_MODULE);

const handle = createRequire(import.meta.url)('./handler.cjs');
let drainer;
process.on('message', (message, listenHandle) => {
  if (message === 'listen') {
    drainer = new Drainer([listenHandle.fd]);
    const server = http.createServer(handle);
    drainer.adopt(server);
    server.listen(listenHandle, () => process.send('ready'));
  } else if (message === 'drain') {
    const drained = drainer.drain(Date.now() + 30_000);
    process.send('closed');
    void drained.then(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
process.send('hello');
