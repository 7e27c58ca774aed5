// bare.cjs plus a subscriber on 'http.server.request.start' like the one overseer's child keeps
// for its drain, to measure what that per-request hook costs on its own.
'use strict';
const dc = require('node:diagnostics_channel');

const draining = new Set();
dc.subscribe('http.server.request.start', ({ server, response }) => {
  if (draining.has(server) && !response.headersSent) response.shouldKeepAlive = false;
});
require('./bare.cjs');
