// The trivial app, run bare (`node bare.cjs`), as a Node cluster worker and under PM2.
// SIGINT closes the server and exits: the graceful stop PM2's documentation recommends.
'use strict';
const http = require('node:http');
const handle = require('./handler.cjs');

const server = http.createServer(handle);
server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  if (process.send) process.send('ready');
});
process.on('SIGINT', () => server.close(() => process.exit(0)));
