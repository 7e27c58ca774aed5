// Drives a PM2 daemon through PM2's programmatic API (so no CLI boot cost lands in the
// measurements) for the benchmark runner, over IPC: start, reload, list, delete, kill. Forwards
// PM2's process events with their times. PM2_HOME comes from the environment (a temp dir).
'use strict';
const pm2 = require('pm2');

const send = (message) => process.connected && process.send(message);

pm2.connect((error) => {
  if (error) {
    send({ fatal: String(error && error.message ? error.message : error) });
    return;
  }
  pm2.launchBus((busError, bus) => {
    if (busError) {
      send({ fatal: String(busError.message || busError) });
      return;
    }
    bus.on('process:event', (packet) => {
      send({ bus: { event: packet.event, pmId: packet.process && packet.process.pm_id, at: packet.at || Date.now() } });
    });
    send({ ready: true });
  });
});

process.on('message', (message) => {
  const reply = (error, data) => send({
    id: message.id,
    error: error ? String(error.message || error) : undefined,
    data,
    at: Date.now(),
  });
  switch (message.cmd) {
    case 'start':
      pm2.start(message.config, (error, list) => reply(error, (list || []).map((item) => item.process && item.process.pid)));
      break;
    case 'reload':
      pm2.reload(message.name, (error) => reply(error));
      break;
    case 'list':
      pm2.list((error, list) => reply(error, (list || []).map((item) => ({ pid: item.pid, status: item.pm2_env && item.pm2_env.status }))));
      break;
    case 'delete':
      pm2.delete(message.name, (error) => reply(error));
      break;
    case 'kill':
      pm2.killDaemon((error) => {
        reply(error);
        pm2.disconnect();
        setTimeout(() => process.exit(0), 100);
      });
      break;
    default:
      reply(new Error(`unknown command ${message.cmd}`));
  }
});
process.on('disconnect', () => pm2.disconnect());
