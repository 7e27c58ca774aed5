// A release that boots fine and then fails, rolled back by its probation, under load:
//   npm run build && node example/probation/demo.mjs [crash|errors|unhealthy]
// It copies app.mjs into a temp folder, starts it, publishes a failing 2.0.0 and prints who
// answers until 1.0.0 serves again. Everything it starts is stopped at the end.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const mode = process.argv[2] ?? 'crash';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-probation-demo-'));
const source = fs.readFileSync(new URL('./app.mjs', import.meta.url), 'utf8');
const app = path.join(dir, 'app.mjs');
// The temp copy imports overseer from this checkout.
const local = (text) => text
  .replace("from 'overseer';", `from ${JSON.stringify(new URL('../../dist/src/index.js', import.meta.url).href)};`)
  .replace("from 'overseer/fetchers';", `from ${JSON.stringify(new URL('../../dist/fetchers/index.js', import.meta.url).href)};`);
fs.writeFileSync(app, local(source));
const port = 3000 + Math.floor(Math.random() * 1000);
const master = spawn(process.execPath, [app], { env: { ...process.env, PORT: String(port), RELEASE_PATH: path.join(dir, 'incoming.mjs') }, stdio: ['ignore', 'pipe', 'inherit'] });
let output = '';
master.stdout.setEncoding('utf8').on('data', (chunk) => {
  output += chunk;
  process.stdout.write(chunk);
});
const until = async (what, check, ms = 30_000) => {
  for (const deadline = Date.now() + ms; !check(); await new Promise((resolve) => setTimeout(resolve, 50))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
};
const ask = () => fetch(`http://127.0.0.1:${port}/`).then((response) => response.text(), (error) => `failed: ${error.cause?.code ?? error.message}\n`);
try {
  let first = await ask();
  for (let tries = 0; first.startsWith('failed') && tries < 100; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    first = await ask();
  }
  console.log('serving:', first.trim());
  const next = path.join(dir, 'next.mjs');
  fs.writeFileSync(next, local(source.replace("const VERSION = '1.0.0'", "const VERSION = '2.0.0'").replace("const MODE = 'good'", `const MODE = '${mode}'`)));
  fs.renameSync(next, path.join(dir, 'incoming.mjs'));
  console.log(`published 2.0.0 (${mode})`);
  const seen = new Map();
  const load = setInterval(async () => {
    const text = (await ask()).trim().replace(/ from child \d+/, '');
    seen.set(text, (seen.get(text) ?? 0) + 1);
  }, 20);
  await until('the rollback', () => output.includes('rolled back'));
  await new Promise((resolve) => setTimeout(resolve, 500));
  clearInterval(load);
  console.log('answers during the demo:', Object.fromEntries(seen));
  console.log('serving:', (await ask()).trim());
} finally {
  master.kill('SIGTERM');
  await new Promise((resolve) => master.once('exit', resolve));
  fs.rmSync(dir, { recursive: true, force: true });
}
