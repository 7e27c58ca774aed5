// `npm run demo`: a live zero-downtime upgrade on this machine, no outside service.
// It serves example/app.mjs as v1 under overseer, publishes v2 and then v3 on an embedded
// release server while a load client keeps asking, and prints who answered and what failed.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// Inside the package, so the app's `import 'overseer'` resolves to this checkout.
const dir = path.join(here, '.demo');
const bundle = path.join(dir, 'app.mjs');
const template = fs.readFileSync(path.join(here, 'app.mjs'), 'utf8');
const build = (version) => template.replace(/const VERSION = '[^']*';/, `const VERSION = '${version}';`);
const say = (line) => console.log(`\x1b[1m[demo]\x1b[0m ${line}`);
const deadline = setTimeout(() => fail('the demo did not finish within 60 s'), 60_000);

fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(bundle, build('1.0.0'));

// The release server: one file, with an ETag so the master's HEAD polls are cheap.
let release = { body: build('1.0.0') };
const releases = http.createServer((req, res) => {
  const etag = `"${createHash('sha256').update(release.body).digest('hex').slice(0, 16)}"`;
  res.writeHead(200, { etag, 'content-length': Buffer.byteLength(release.body), 'content-type': 'text/javascript' });
  res.end(req.method === 'HEAD' ? undefined : release.body);
});
await new Promise((resolve) => releases.listen(0, '127.0.0.1', resolve));
const releaseUrl = `http://127.0.0.1:${releases.address().port}/app.mjs`;

const master = spawn(process.execPath, [bundle], {
  env: { ...process.env, ADDRESS: '127.0.0.1:0', RELEASE_URL: releaseUrl, RELEASE_INTERVAL: '250' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let port;
const ready = new Promise((resolve) => {
  master.stdout.setEncoding('utf8').on('data', (chunk) => {
    for (const line of chunk.split('\n').filter(Boolean)) {
      console.log(`  ${line}`);
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (match) port = Number(match[1]);
      if (port && /child \d+ ready/.test(line)) resolve();
    }
  });
});
master.once('exit', (code) => {
  if (!stopping) fail(`the master exited unexpectedly (${code})`);
});
let stopping = false;

function fail(message) {
  console.error(`[demo] ${message}`);
  if (master.exitCode === null) master.kill('SIGKILL');
  process.exit(1);
}

await ready;
say(`v1 serves on http://127.0.0.1:${port}; starting a load client (8 keep-alive connections)`);

const answered = new Map();
const failures = [];
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
let loading = true;
const ask = () => new Promise((resolve) => {
  http.get({ host: '127.0.0.1', port, agent }, (res) => {
    let body = '';
    res.setEncoding('utf8').on('data', (chunk) => (body += chunk)).on('end', () => {
      try {
        const { version, pid } = JSON.parse(body);
        const key = `${version} (pid ${pid})`;
        answered.set(key, (answered.get(key) ?? 0) + 1);
      } catch {
        failures.push(`unreadable answer ${JSON.stringify(body)}`);
      }
      resolve();
    });
  }).on('error', (error) => {
    failures.push(error.code ?? error.message);
    resolve();
  });
});
const loops = Array.from({ length: 8 }, async () => {
  while (loading) await ask();
});
const versionAnswering = (version) => new Promise((resolve) => {
  const check = setInterval(() => {
    if ([...answered.keys()].some((key) => key.startsWith(`${version} `))) {
      clearInterval(check);
      resolve();
    }
  }, 20);
});
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

for (const version of ['2.0.0', '3.0.0']) {
  await pause(1500);
  say(`publishing ${version} on the release server`);
  release = { body: build(version) };
  await versionAnswering(version);
  say(`${version} answers`);
}
await pause(1500);
loading = false;
await Promise.all(loops);
agent.destroy();

say('answers by version and child:');
for (const [key, count] of answered) console.log(`  ${key.padEnd(24)} ${String(count).padStart(7)}`);
say(`failed requests: ${failures.length}${failures.length ? ` (${[...new Set(failures)].join(', ')})` : ''}`);
say(`the bundle on disk is now ${/const VERSION = '([^']*)'/.exec(fs.readFileSync(bundle, 'utf8'))[1]}; the one before it is kept as app.mjs.previous`);

stopping = true;
master.kill('SIGTERM');
await new Promise((resolve) => master.once('exit', resolve));
releases.close();
clearTimeout(deadline);
fs.rmSync(dir, { recursive: true, force: true });
process.exitCode = failures.length === 0 ? 0 : 1;
