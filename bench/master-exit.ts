/**
 * How often a master fails to exit after SIGTERM. Starts `overseer run` masters over a small
 * unmodified HTTP app, `--parallel` at a time, each stopped with SIGTERM once its child is ready
 * and has answered; a master not gone within `--deadline` ms counts as hung, and its threads'
 * kernel wait channels are printed before it is killed. Found by the suite on Node 24: a V8 worker
 * thread compiling Sparkplug code waited on a collection the main thread, inside process.exit(),
 * never ran (nodejs/node#54918; src/core/master-flags.ts).
 *
 *   BENCH_DIST=<dir> node --import tsx bench/master-exit.ts [--stops=200] [--parallel=4] [--deadline=20000]
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { threadsOf } from '../test/helpers/exit.ts';
import { freePort } from '../test/helpers/ports.ts';

const { values } = parseArgs({ options: { stops: { type: 'string', default: '200' }, parallel: { type: 'string', default: '4' }, deadline: { type: 'string', default: '20000' } } });
const stops = Number(values.stops);
const parallel = Number(values.parallel);
const deadlineMs = Number(values.deadline);
const dist = path.resolve(process.env.BENCH_DIST ?? 'dist');
const app = "require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT))";

interface Stop {
  readonly hung: boolean;
  readonly ms: number;
}

async function oneStop(): Promise<Stop> {
  const port = await freePort();
  const master = spawn(process.execPath, [path.join(dist, 'src/cli/main.js'), 'run', '--events', '--listen', `127.0.0.1:${port}`, '--env', `PORT=${port}`, '--', process.execPath, '-e', app], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const ready = new Promise<void>((resolve, reject) => {
    master.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.includes('"child-ready"')) resolve();
    });
    master.once('exit', (code) => reject(new Error(`master exited (${code}) before its child was ready:\n${stderr}`)));
  });
  const exited = new Promise<void>((resolve) => master.once('exit', () => resolve()));
  await ready;
  await (await fetch(`http://127.0.0.1:${port}/`)).text();
  const stoppedAt = performance.now();
  master.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const hung = await Promise.race([exited.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), deadlineMs)))]);
  clearTimeout(timer);
  const ms = performance.now() - stoppedAt;
  if (hung) {
    console.log(`master ${master.pid} did not exit within ${deadlineMs} ms of SIGTERM\n${threadsOf(master.pid)}\n${stderr.split('\n').slice(-4).join('\n')}`);
    master.kill('SIGKILL');
    await exited;
  }
  return { hung, ms };
}

const results: Stop[] = [];
let next = 0;
await Promise.all(Array.from({ length: parallel }, async () => {
  while (next < stops) {
    next++;
    results.push(await oneStop());
  }
}));
const times = results.filter((stop) => !stop.hung).map((stop) => stop.ms).sort((a, b) => a - b);
console.log(`node ${process.version}, ${dist}: ${results.length} stops, ${results.filter((stop) => stop.hung).length} hung; exit after SIGTERM median ${times[Math.floor(times.length / 2)]?.toFixed(0)} ms, max ${times.at(-1)?.toFixed(0)} ms`);
