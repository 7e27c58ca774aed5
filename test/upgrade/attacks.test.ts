/**
 * The release path under attack, end to end: a real master started from a test bundle, a real
 * local release server serving the hostile release, real files. Each test asserts what a user
 * sees: the old child still serves, the installed build and `.previous` are intact, nothing is
 * written outside, and the refusal is an `upgrade-rejected` event naming the code and evidence.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { after, describe, test } from 'node:test';
import { manifestSha256 } from '../../src/upgrade/hash.ts';
import { bundleSource, writeBundle } from '../helpers/bundles.ts';
import { ask } from '../helpers/load.ts';
import { fixture, root, startMaster, tempDir, type RunningMaster } from '../helpers/master.ts';
import { createMinisignKey, type MinisignTestKey } from '../../support/minisign.ts';
import { startReleaseServer, type ReleaseServer } from '../../support/release-server.ts';
import { tar } from './tar-archive.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function releaseServer(): Promise<ReleaseServer> {
  const server = await startReleaseServer();
  cleanups.push(() => server.close());
  return server;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** A bundle whose run() is given no version: its handshake reports none (as Go binaries do). */
const unversioned = (version: string) => bundleSource(version).replace(`version: ${JSON.stringify(version)},`, '');

/** A single-file app under a master, with a `.previous` already beside it. */
async function fileApp(server: ReleaseServer, options: { source?: string; config?: object; sha256?: boolean; signature?: boolean } = {}) {
  const dir = tempDir();
  const bundle = path.join(dir, 'app.mjs');
  if (options.source === undefined) writeBundle(bundle, '1.0.0');
  else fs.writeFileSync(bundle, options.source);
  fs.writeFileSync(`${bundle}.previous`, '// the build before, kept for rollback\n');
  const env: Record<string, string> = { APP_FETCH_URL: server.url('/app.mjs'), APP_OPTIONS: JSON.stringify(options.config ?? {}) };
  if (options.sha256) env.APP_FETCH_SHA256_URL = server.url('/app.mjs.sha256');
  if (options.signature) env.APP_FETCH_SIGNATURE_URL = server.url('/app.mjs.minisig');
  const start = async () => {
    const master = await startMaster(bundle, { cwd: dir, env });
    cleanups.push(() => master.stop());
    return master;
  };
  return { dir, bundle, start, installed: () => fs.readFileSync(bundle, 'utf8'), previous: () => fs.readFileSync(`${bundle}.previous`, 'utf8') };
}

/** Asserts the user-visible outcome of a refusal: same child, same build, same `.previous`. */
async function assertUntouched(master: RunningMaster, pid: number, files: Array<[string, string]>): Promise<void> {
  assert.equal((await ask(master.port)).pid, pid, 'the old child still serves');
  for (const [file, content] of files) assert.equal(fs.readFileSync(file, 'utf8'), content, `${file} is intact`);
}

/** A master for a release folder (`current -> releases/<x>`) running folder-server.mjs, with sidecars. */
function folderMasterScript(dir: string): string {
  const dist = (file: string) => JSON.stringify(pathToFileURL(path.join(root, 'dist', file)).href);
  const script = path.join(dir, 'folder-master.mjs');
  fs.writeFileSync(script, `
import { normalizeConfig } from ${dist('src/core/config.js')};
import { ExecLauncher } from ${dist('src/core/launch/exec.js')};
import { startMaster } from ${dist('src/core/start.js')};
import { HttpFetcher } from ${dist('fetchers/index.js')};
const spec = JSON.parse(process.env.MASTER_SPEC);
const config = normalizeConfig({
  program() {}, addresses: ['127.0.0.1:0'], bundlePath: spec.bundle, minFetchInterval: 50,
  fetcher: new HttpFetcher({ interval: 100, ...spec.fetch }), readyTimeout: 3000, ...spec.config,
  onEvent: (event) => process.send?.({ event }),
});
await startMaster(config, { launcher: new ExecLauncher({ command: process.execPath, args: [spec.bundle + '/server.mjs'], readiness: { kind: 'notify' }, bundlePath: spec.bundle }) });
`);
  return script;
}

/** A folder app: `releases/<name>` holding folder-server.mjs and version.txt, `current` and `current.previous` links. */
function folderApp(liveName?: (folder: string) => Promise<string>) {
  const dir = tempDir();
  const build = (version: string) => {
    const folder = path.join(dir, 'build', version);
    fs.mkdirSync(folder, { recursive: true });
    fs.copyFileSync(fixture('folder-server.mjs'), path.join(folder, 'server.mjs'));
    fs.writeFileSync(path.join(folder, 'version.txt'), version);
    const archive = path.join(dir, 'build', `${version}.tar`);
    execFileSync('tar', ['-cf', archive, '-C', folder, '.']);
    return { folder, archive: gzipSync(fs.readFileSync(archive)) };
  };
  const releases = path.join(dir, 'releases');
  fs.mkdirSync(path.join(releases, '0.9.0'), { recursive: true });
  fs.writeFileSync(path.join(releases, '0.9.0', 'version.txt'), '0.9.0');
  const current = path.join(dir, 'current');
  fs.symlinkSync('releases/0.9.0', `${current}.previous`);
  const install = async (version: string) => {
    const { folder, archive } = build(version);
    const name = liveName ? await liveName(folder) : version;
    fs.cpSync(folder, path.join(releases, name), { recursive: true });
    fs.symlinkSync(`releases/${name}`, current);
    return { name, archive };
  };
  return { dir, current, releases, build, install, script: folderMasterScript(dir) };
}

describe('attacks on the release path', () => {
  test('1: a folder release is verified before a single entry is extracted (a link chain cannot write outside)', async () => {
    const key = createMinisignKey();
    const app = folderApp();
    await app.install('1.0.0');
    const server = await releaseServer();
    // Each link looks "inside" as text; followed for real, u0 is the app's own folder.
    const hostile = gzipSync(tar([
      { name: 'd/', type: '5', mode: 0o755 },
      { name: 'd/l', type: '2', link: '..' },
      { name: 'd/up', type: '2', link: 'l/..' },
      { name: 'u0', type: '2', link: 'd/up/..' },
      { name: 'u0/pwned', body: 'written by the attacker\n' },
    ]));
    server.publish('/app.tar.gz', hostile, { signature: key.sign(Buffer.from('some other file'), 'version:9.0.0') });
    const master = await startMaster(app.script, {
      env: { MASTER_SPEC: JSON.stringify({ bundle: app.current, fetch: { url: server.url('/app.tar.gz'), signatureUrl: server.url('/app.tar.gz.minisig') }, config: { verify: { publicKey: key.publicKeyFile } } }) },
    });
    cleanups.push(() => master.stop());
    const serving = await ask(master.port);
    const rejected = await master.waitFor('upgrade-rejected');
    assert.ok(!fs.existsSync(path.join(app.dir, 'pwned')), 'nothing was written outside the release folder');
    assert.deepEqual(fs.readdirSync(app.releases).sort(), ['0.9.0', '1.0.0'], 'nothing was extracted at all');
    assert.equal(rejected.code, 'ERR_OVERSEER_SIGNATURE_INVALID');
    assert.equal(rejected.receivedSha256, sha256(hostile), 'the evidence names the bytes received');
    await assertUntouched(master, serving.pid, [[path.join(app.current, 'version.txt'), '1.0.0']]);
    assert.equal(fs.readlinkSync(`${app.current}.previous`), 'releases/0.9.0');
  });

  test('2: offering the installed folder release again leaves the live folder in place', async () => {
    const app = folderApp((folder) => manifestSha256(folder).then((hash) => hash.slice(0, 16)));
    const { name, archive } = await app.install('1.0.0');
    const server = await releaseServer();
    server.publish('/app.tar.gz', archive, { etag: false, lastModified: false });
    const master = await startMaster(app.script, { env: { MASTER_SPEC: JSON.stringify({ bundle: app.current, fetch: { url: server.url('/app.tar.gz') } }) } });
    cleanups.push(() => master.stop());
    const serving = await ask(master.port);
    await master.waitFor('upgrade-skipped', (event) => event.why === 'same-sha256');
    // A few more polls offer it again: still nothing touched.
    const polls = server.requests.length;
    await master.waitFor('upgrade-available', () => server.requests.length >= polls + 4);
    assert.equal(fs.readlinkSync(app.current), `releases/${name}`);
    assert.equal(fs.readlinkSync(`${app.current}.previous`), 'releases/0.9.0');
    await assertUntouched(master, serving.pid, [[path.join(app.current, 'version.txt'), '1.0.0'], [path.join(app.current, 'server.mjs'), fs.readFileSync(fixture('folder-server.mjs'), 'utf8')]]);
    // The next restart still finds its build.
    master.process.kill('SIGUSR2');
    await master.waitFor('handoff-completed');
    assert.equal((await ask(master.port)).version, '1.0.0');
  });

  test('3: with a public key, a signed release without a trusted version is refused (fail closed)', async () => {
    const key = createMinisignKey();
    const server = await releaseServer();
    const old = unversioned('0.1.0');
    server.publish('/app.mjs', old, { signature: key.sign(Buffer.from(old)) });
    const app = await fileApp(server, { signature: true, config: { verify: { publicKey: key.publicKeyFile } } });
    const [installed, previous] = [app.installed(), app.previous()];
    const master = await app.start();
    const serving = await ask(master.port);
    const rejected = await master.waitFor('upgrade-rejected');
    assert.equal(rejected.code, 'ERR_OVERSEER_VERSION_UNTRUSTED');
    assert.equal(rejected.receivedSha256, sha256(old));
    await assertUntouched(master, serving.pid, [[app.bundle, installed], [`${app.bundle}.previous`, previous]]);
  });

  test('3: a signed old release replayed after a restart is refused: the highest version installed persists', async () => {
    const key = createMinisignKey();
    const server = await releaseServer();
    const v1 = unversioned('1.0.0');
    const v2 = unversioned('2.0.0');
    server.publish('/app.mjs', v2, { signature: key.sign(Buffer.from(v2), 'version:2.0.0 file:app.mjs') });
    const app = await fileApp(server, { source: v1, signature: true, config: { verify: { publicKey: key.publicKeyFile } } });
    const first = await app.start();
    const applied = await first.waitFor('upgrade-applied');
    await first.stop();
    // The genuine, correctly signed 1.0.0, replayed by the source after the master restarted.
    server.publish('/app.mjs', v1, { signature: key.sign(Buffer.from(v1), 'version:1.0.0 file:app.mjs') });
    const [installed, previous] = [app.installed(), app.previous()];
    const master = await app.start();
    const serving = await ask(master.port);
    const rejected = await master.waitFor('upgrade-rejected');
    await assertUntouched(master, serving.pid, [[app.bundle, installed], [`${app.bundle}.previous`, previous]]);
    assert.equal(rejected.code, 'ERR_OVERSEER_DOWNGRADE');
    assert.equal(rejected.version, '1.0.0');
    assert.match(app.installed(), /release 2\.0\.0/);
    assert.equal(applied.version, '2.0.0', 'installed as the version its signature names');
    assert.equal(fs.readFileSync(`${app.bundle}.overseer-version`, 'utf8').trim(), '2.0.0');
  });

  test('4: a corrupted transfer does not ban the genuine release', async () => {
    const server = await releaseServer();
    const v2 = bundleSource('2.0.0');
    server.publish('/app.mjs.sha256', `${sha256(v2)}  app.mjs\n`);
    const garbage = Buffer.alloc(Buffer.byteLength(v2), 0x41);
    server.publish('/app.mjs', garbage);
    const app = await fileApp(server, { sha256: true });
    const [installed, previous] = [app.installed(), app.previous()];
    const master = await app.start();
    const serving = await ask(master.port);
    const rejected = await master.waitFor('upgrade-rejected');
    assert.equal(rejected.code, 'ERR_OVERSEER_CHECKSUM_MISMATCH');
    await assertUntouched(master, serving.pid, [[app.bundle, installed], [`${app.bundle}.previous`, previous]]);
    // The next transfer brings the genuine bytes: they land.
    server.publish('/app.mjs', v2);
    assert.equal((await master.waitFor('upgrade-applied')).version, '2.0.0');
    assert.equal((await ask(master.port)).version, '2.0.0');
    assert.equal(rejected.receivedSha256, sha256(garbage), 'the evidence: the bytes received');
    assert.equal(rejected.declaredSha256, sha256(v2), 'the evidence: the sha256 declared');
  });

  test('4: a release refused for its signature is tried again once it is signed again', async () => {
    const key = createMinisignKey();
    const other = createMinisignKey();
    const server = await releaseServer();
    const v2 = bundleSource('2.0.0');
    // No ETag or Last-Modified: HttpFetcher reads the sidecars on every poll (with an ETag it
    // keeps them until the asset changes), and the master knows the release by its bytes.
    server.publish('/app.mjs', v2, { signature: other.sign(Buffer.from(v2), 'version:2.0.0'), etag: false, lastModified: false });
    const app = await fileApp(server, { signature: true, config: { verify: { publicKey: key.publicKeyFile } } });
    const [installed, previous] = [app.installed(), app.previous()];
    const master = await app.start();
    const serving = await ask(master.port);
    assert.equal((await master.waitFor('upgrade-rejected')).code, 'ERR_OVERSEER_SIGNATURE_INVALID');
    await assertUntouched(master, serving.pid, [[app.bundle, installed], [`${app.bundle}.previous`, previous]]);
    // What the error tells the user to do: sign again, republish the .minisig only.
    server.publish('/app.mjs.minisig', signed(key, v2, '2.0.0'));
    assert.equal((await master.waitFor('upgrade-applied')).version, '2.0.0');
  });

  test('10: start-up cleanup spares the live download of another master sharing the bundle', async () => {
    const server = await releaseServer();
    server.publish('/app.mjs', bundleSource('1.0.0'));
    const app = await fileApp(server);
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    assert.ok(gone !== undefined);
    const live = path.join(app.dir, `.app.overseer-${process.pid}-${'a'.repeat(16)}.tmp.mjs`);
    const stale = path.join(app.dir, `.app.overseer-${gone}-${'b'.repeat(16)}.tmp.mjs`);
    fs.writeFileSync(live, 'another master is downloading this');
    fs.writeFileSync(stale, 'left by a killed master');
    const master = await app.start();
    await master.waitFor('upgrade-skipped', (event) => event.why === 'same-sha256');
    assert.ok(fs.existsSync(live), 'the live download is kept');
    assert.ok(!fs.existsSync(stale), 'the dead master’s temp is removed');
  });
});

function signed(key: MinisignTestKey, source: string, version: string): string {
  return key.sign(Buffer.from(source), `version:${version} file:app.mjs`);
}
