/**
 * How often a master fails to exit after SIGTERM. Starts `overseer run` masters over a small
 * unmodified HTTP app, `--parallel` at a time, each stopped with SIGTERM once its child is ready
 * and has answered; a master not gone within `--deadline` ms counts as hung, and its threads'
 * kernel wait channels are printed before it is killed. Found by the suite on Node 24: a V8 worker
 * thread compiling Sparkplug code waited on a collection the main thread, inside process.exit(),
 * never ran (nodejs/node#54918; src/core/master-flags.ts).
 *
 * With `--poll`, each master also polls a local URL (an HttpFetcher, every 200 ms; the server
 * answers 404) and is stopped after its third poll, so undici and its parser are loaded.
 *
 *   BENCH_DIST=<dir> node --import tsx bench/master-exit.ts [--stops=200] [--parallel=4] [--deadline=20000] [--poll]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { threadsOf } from '../support/process.ts';
import { freePort } from '../test/helpers/ports.ts';

const { values } = parseArgs({ options: { stops: { type: 'string', default: '200' }, parallel: { type: 'string', default: '4' }, deadline: { type: 'string', default: '20000' }, poll: { type: 'boolean', default: false } } });
const stops = Number(values.stops);
const parallel = Number(values.parallel);
const deadlineMs = Number(values.deadline);
const dist = path.resolve(process.env.BENCH_DIST ?? 'dist');
// The app is a file of its own, the bundle a polling master would replace.
const appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-bench-exit-'));
fs.writeFileSync(path.join(appDir, 'app.cjs'), "require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT));\n");

/** Polls seen per path (one path per master), when --poll. */
const polls = new Map<string, number>();
const releases = values.poll ? http.createServer((request, response) => {
  polls.set(request.url ?? '', (polls.get(request.url ?? '') ?? 0) + 1);
  response.writeHead(404).end();
}).listen(0, '127.0.0.1') : undefined;
if (releases) await new Promise((resolve) => releases.once('listening', resolve));
let masters = 0;
/** Masters not yet exited: killed if the bench ends early (one failed to start, say). */
const live = new Set<ReturnType<typeof spawn>>();
process.on('exit', () => {
  for (const master of live) master.kill('SIGKILL');
});

interface Stop {
  readonly hung: boolean;
  readonly ms: number;
}

async function oneStop(): Promise<Stop> {
  const port = await freePort();
  const releasePath = `/app-${++masters}`;
  const poll = releases ? ['--fetch-url', `http://127.0.0.1:${(releases.address() as { port: number }).port}${releasePath}`, '--fetch-interval', '200', '--min-fetch-interval', '200', '--bundle', 'app.cjs'] : [];
  const master = spawn(process.execPath, [path.join(dist, 'src/cli/main.js'), 'run', '--events', '--listen', `127.0.0.1:${port}`, '--env', `PORT=${port}`, ...poll, '--', process.execPath, 'app.cjs'], { cwd: appDir, stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(master);
  master.once('exit', () => live.delete(master));
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
  while (releases && (polls.get(releasePath) ?? 0) < 3) await new Promise((resolve) => setTimeout(resolve, 20));
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
    // Its children have no IPC channel to notice a SIGKILLed master by: they go too.
    for (const match of stderr.matchAll(/"type":"child-forked","pid":(\d+)/g)) {
      try {
        process.kill(Number(match[1]), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  return { hung, ms };
}

/** oneStop(), again on a new port when another process took the free one first (not what is measured). */
async function stopOnFreePort(): Promise<Stop> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await oneStop();
    } catch (error) {
      if (attempt === 3 || !String(error).includes('EADDRINUSE')) throw error;
    }
  }
}

const results: Stop[] = [];
let next = 0;
await Promise.all(Array.from({ length: parallel }, async () => {
  while (next < stops) {
    next++;
    results.push(await stopOnFreePort());
  }
}));
const times = results.filter((stop) => !stop.hung).map((stop) => stop.ms).sort((a, b) => a - b);
releases?.close();
fs.rmSync(appDir, { recursive: true, force: true });
console.log(`node ${process.version}, ${dist}${values.poll ? ', polling' : ''}: ${results.length} stops, ${results.filter((stop) => stop.hung).length} hung; exit after SIGTERM median ${times[Math.floor(times.length / 2)]?.toFixed(0)} ms, max ${times.at(-1)?.toFixed(0)} ms`);
