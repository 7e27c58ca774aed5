// `overseer deploy` end to end: makes a deployment folder with one app, starts the deploy
// daemon on it, ships a verified release, rolls it back, and stops. Run it from the package
// root after `npm run build`:  node example/deploy/demo.mjs
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const server = fileURLToPath(new URL('./server.mjs', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-deploy-example-'));
const app = path.join(dir, 'hello');

/** Copies the server and a VERSION file into `folder`, with the SHA256SUMS a deployer would write. */
function writeRelease(folder, version) {
  fs.mkdirSync(folder, { recursive: true });
  fs.copyFileSync(server, path.join(folder, 'server.mjs'));
  fs.writeFileSync(path.join(folder, 'VERSION'), `${version}\n`);
  const sums = ['server.mjs', 'VERSION'].map((name) => `${createHash('sha256').update(fs.readFileSync(path.join(folder, name))).digest('hex')}  ${name}\n`);
  fs.writeFileSync(path.join(folder, 'SHA256SUMS'), sums.join(''));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(check) {
  for (let tries = 0; tries < 300; tries++) {
    const value = check();
    if (value) return value;
    await sleep(50);
  }
  throw new Error('the example timed out');
}

/** Drops command/NAME and waits until overseer deploy has handled (and removed) it. */
async function command(name) {
  const file = path.join(app, 'command', name);
  fs.writeFileSync(file, '');
  await until(() => !fs.existsSync(file));
  if (fs.existsSync(`${file}.failed`)) console.log(`command/${name} failed: ${fs.readFileSync(`${file}.failed`, 'utf8')}`);
}

// The deployment folder: hello/app.json and the first release in hello/current/.
fs.mkdirSync(app);
fs.writeFileSync(path.join(app, 'app.json'), JSON.stringify({ command: [process.execPath, 'server.mjs'], listen: ['web=127.0.0.1:0'] }, null, 2));
writeRelease(path.join(app, 'current'), 'v1');

const deploy = spawn(process.execPath, [cli, 'deploy', dir, '--poll', '200'], { stdio: ['ignore', 'inherit', 'pipe'] });
let log = '';
deploy.stderr.setEncoding('utf8').on('data', (chunk) => {
  log += chunk;
  process.stderr.write(chunk);
});
const port = Number((await until(() => /listening on 127\.0\.0\.1:(\d+)/.exec(log)))[1]);
await until(() => log.includes('ready (generation 1)'));
const hello = async () => console.log(`GET / -> ${(await (await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } })).text()).trim()}`);
await hello();

console.log('\n# ship v2: copy it into release/, write release/.ready last, drop command/release');
writeRelease(path.join(app, 'release'), 'v2');
fs.writeFileSync(path.join(app, 'release', '.ready'), '');
await command('release');
await hello();

console.log('\n# roll back to v1');
await command('rollback');
await hello();
console.log(`\narchive/ now holds: ${fs.readdirSync(path.join(app, 'archive')).join(', ')}`);

deploy.kill('SIGTERM');
deploy.once('exit', (code) => {
  console.log(`overseer deploy exited with code ${code}`);
  fs.rmSync(dir, { recursive: true, force: true });
});
