// `npm run build && node example/fleet/demo.mjs`: a staged rollout and a pull-back on five local
// instances, no outside service. An embedded HTTP server holds a signed manifest and two builds;
// the demo publishes 1.1.0 to 40 % of the fleet, then to 100 %, then pulls it, and prints which
// instance runs what after each step (and each one's bucket for 1.1.0).
//
// The manifest is signed here with a few lines of node:crypto (minisign's format), so the demo
// needs nothing installed; a publisher uses `overseer release sign` or `minisign -S` instead.
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.join(here, '.demo'); // inside the package: `import 'overseer'` resolves to this checkout
const say = (line) => console.log(`\x1b[1m[fleet]\x1b[0m ${line}`);
const deadline = setTimeout(() => finish(new Error('the demo did not finish within 3 minutes')), 180_000);
fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });

// A minisign key pair and signer (Ed25519 over the BLAKE2b-512 of the file, plus the comment signature).
const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const keyId = randomBytes(8);
const publicKeyLine = Buffer.concat([Buffer.from('Ed'), keyId, Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url')]).toString('base64');
function minisign(data) {
  const signature = sign(null, createHash('blake2b512').update(data).digest(), privateKey);
  const comment = `timestamp:${Math.floor(Date.now() / 1000)}\tfile:manifest.json\thashed`;
  const global = sign(null, Buffer.concat([signature, Buffer.from(comment)]), privateKey);
  return `untrusted comment: demo\n${Buffer.concat([Buffer.from('ED'), keyId, signature]).toString('base64')}\ntrusted comment: ${comment}\n${global.toString('base64')}\n`;
}

// The app, one build per version. It polls the manifest every second (± 20 %).
const build = (version) => `import http from 'node:http';
import { run } from 'overseer';
import { ManifestFetcher } from 'overseer/fetchers';
run({
  address: '127.0.0.1:0',
  version: ${JSON.stringify(version)},
  minFetchInterval: 100,
  verify: { publicKey: process.env.DEMO_PUBLIC_KEY },
  fetcher: new ManifestFetcher({ http: { url: process.env.DEMO_MANIFEST_URL }, interval: 1000 }),
  onEvent: (event) => process.send?.(event),
  async program(state) {
    await state.listen(http.createServer((req, res) => res.end(state.version + '\\n')));
  },
});
`;
const files = new Map(); // path → bytes served
const server = http.createServer((req, res) => {
  const body = files.get(req.url);
  if (body === undefined) return res.writeHead(404).end();
  const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
  res.writeHead(200, { etag, 'content-length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;
const builds = { '1.0.0': Buffer.from(build('1.0.0')), '1.1.0': Buffer.from(build('1.1.0')) };
for (const [version, body] of Object.entries(builds)) files.set(`/app-${version}.mjs`, body);

// What `overseer release create|rollout|pull` and `sign` write: the manifest and its .minisig.
let sequence = 0;
function publish(newRelease) {
  sequence++;
  const release = (version, extra = {}) => ({ version, path: `app-${version}.mjs`, size: builds[version].length, sha256: createHash('sha256').update(builds[version]).digest('hex'), rollout: 100, pulled: false, ...extra });
  const manifest = {
    schema: 'overseer-manifest/1',
    sequence,
    expires: new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z'),
    channels: { stable: { releases: [release('1.0.0'), ...(newRelease ? [release('1.1.0', newRelease)] : [])] } },
  };
  const text = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  files.set('/manifest.json.minisig', Buffer.from(minisign(text)));
  files.set('/manifest.json', text);
}
publish(undefined);

// Five instances, each in its own folder (an upgrade replaces its app.mjs), ids web-1 … web-5.
const instances = [];
for (let n = 1; n <= 5; n++) {
  const id = `web-${n}`;
  fs.mkdirSync(path.join(dir, id));
  const bundle = path.join(dir, id, 'app.mjs');
  fs.writeFileSync(bundle, builds['1.0.0']);
  const child = spawn(process.execPath, [bundle], {
    env: { ...process.env, OVERSEER_INSTANCE_ID: id, DEMO_PUBLIC_KEY: publicKeyLine, DEMO_MANIFEST_URL: `${base}/manifest.json` },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  // The instance's bucket for 1.1.0, as overseer computes it: it takes 1.1.0 when this is under the rollout.
  const bucket = (createHash('sha256').update(`${id}\0${'1.1.0'}`).digest().readUInt32BE(0) / 2 ** 32) * 100;
  const instance = { id, child, version: '1.0.0', bucket, sequence: 0 };
  child.on('message', (event) => {
    if (event.type === 'upgrade-applied') instance.version = event.version;
    if (event.type === 'manifest-accepted') {
      instance.sequence = Math.max(instance.sequence, event.sequence);
    }
  });
  instances.push(instance);
}

async function settle(expect) {
  while (!instances.every((i) => i.sequence === sequence && expect(i))) await new Promise((resolve) => setTimeout(resolve, 200));
  for (const i of instances) say(`  ${i.id}  runs ${i.version}  (bucket for 1.1.0: ${i.bucket.toFixed(1)})`);
}

try {
  say('five instances start on 1.0.0');
  await settle(() => true);
  say('publish 1.1.0 at 40 %: instances whose bucket is under 40 take it');
  publish({ rollout: 40 });
  await settle((i) => (i.bucket < 40 ? i.version === '1.1.0' : true));
  say('raise it to 100 %: the rest follow; those that had it keep it');
  publish({ rollout: 100 });
  await settle((i) => i.version === '1.1.0');
  say('pull 1.1.0: every instance goes back to 1.0.0 through a ready-first handoff');
  publish({ rollout: 100, pulled: true });
  await settle((i) => i.version === '1.0.0');
  say('done');
  await finish();
} catch (error) {
  await finish(error);
}

async function finish(error) {
  clearTimeout(deadline);
  await Promise.all(instances.map((i) => new Promise((resolve) => {
    if (i.child.exitCode !== null) return resolve();
    i.child.once('exit', resolve);
    i.child.kill('SIGTERM');
  })));
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
  if (error) {
    console.error(error);
    process.exit(1);
  }
}
