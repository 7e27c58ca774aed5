// Child of ready-first-master.mjs: serves the shared handler; on 'drain' it closes its listener
// and marks each open connection to close on its first response after a random moment within
// DRAIN_SPREAD_MS (0: the next response, as overseer does), sweeps idle ones a second after
// that, and exits once every connection is gone.
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';

const handle = createRequire(import.meta.url)('./handler.cjs');
const spread = Number(process.env.DRAIN_SPREAD_MS ?? 0);
const connections = new Set();
const closeAt = new WeakMap();
let server;

const serve = (request, response) => {
  const at = closeAt.get(request.socket);
  if (at !== undefined && Date.now() >= at) response.setHeader('connection', 'close');
  handle(request, response);
};

process.on('message', (message, listenHandle) => {
  if (message === 'listen') {
    server = http.createServer(serve);
    server.on('connection', (socket) => {
      connections.add(socket);
      socket.once('close', () => connections.delete(socket));
    });
    server.listen(listenHandle, () => process.send('ready'));
  } else if (message === 'drain') {
    const now = Date.now();
    // net.Server's close: stop accepting, leave open connections alone; exit once they are gone.
    net.Server.prototype.close.call(server, () => process.exit(0));
    for (const socket of connections) closeAt.set(socket, now + Math.random() * spread);
    const sweep = () => server.closeIdleConnections();
    setTimeout(() => {
      sweep();
      setInterval(sweep, 1000).unref();
    }, spread + 1000).unref();
    setTimeout(() => server.closeAllConnections(), 30_000).unref();
  }
});
process.on('disconnect', () => process.exit(0));
process.send('hello');
