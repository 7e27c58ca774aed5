// The application of the deploy example: an HTTP server on the socket overseer hands it (fd 3),
// answering with the VERSION file of its release folder. It says READY=1 once it serves, and
// drains gently on SIGTERM: it stops accepting and finishes the requests it accepted.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const version = fs.readFileSync('VERSION', 'utf8').trim();
let draining = false;
const server = http.createServer((req, res) => {
  if (draining) res.setHeader('connection', 'close');
  res.end(`hello from ${version} (pid ${process.pid})\n`);
});
server.listen({ fd: 3 }, () => fs.writeSync(Number(process.env.OVERSEER_READY_FD), 'READY=1\n'));
process.on('SIGTERM', () => {
  draining = true;
  // http's server.close() would also drop connections accepted a moment ago: close the listener only.
  net.Server.prototype.close.call(server, () => process.exit(0));
});
