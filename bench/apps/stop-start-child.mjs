// Child of stop-start-master.mjs: serves the shared handler on the master's handle; on 'drain'
// it drains with overseer's Drainer, says 'closed' once its listener is closed, and exits when drained.
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = process.env.BENCH_DIST ?? path.join(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '../../dist');
const { Drainer } = await import(pathToFileURL(path.join(dist, 'src/core/drain.js')).href);

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
