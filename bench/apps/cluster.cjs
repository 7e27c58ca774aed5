// Node's cluster module with one worker running bare.cjs; BENCH_SCHED picks 'rr' or 'none'.
// Tells its parent { ready, pid } once the worker listens.
'use strict';
const cluster = require('node:cluster');
const path = require('node:path');

cluster.schedulingPolicy = process.env.BENCH_SCHED === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
cluster.setupPrimary({ exec: path.join(__dirname, 'bare.cjs') });
const workers = Number(process.env.BENCH_WORKERS || 1);
for (let index = 0; index < workers; index++) {
  const worker = cluster.fork();
  worker.on('message', (message) => {
    if (message === 'ready' && process.send) process.send({ ready: true, pid: worker.process.pid });
  });
}
process.on('SIGTERM', () => {
  for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGKILL');
  process.exit(0);
});
