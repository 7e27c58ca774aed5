import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, describe, test } from 'node:test';
import { extractTar } from '../../src/upgrade/tar.ts';
import { manifestSha256 } from '../../src/upgrade/hash.ts';
import { Load, ask } from '../helpers/load.ts';
import { fixture, startMaster, tempDir, until, type RunningMaster } from '../helpers/master.ts';
import { startReleaseServer, type ReleaseServer } from '../../support/release-server.ts';
import { linkChain, tar } from './tar-archive.ts';
import { createMinisignKey } from '../../support/minisign.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('release folders under a master for any executable', () => {
  function layout() {
    const dir = tempDir();
    const release = (version: string, extra: Record<string, string> = {}) => {
      const folder = path.join(dir, 'build', version);
      fs.mkdirSync(folder, { recursive: true });
      fs.copyFileSync(fixture('folder-server.mjs'), path.join(folder, 'server.mjs'));
      fs.writeFileSync(path.join(folder, 'version.txt'), version);
      for (const [file, body] of Object.entries(extra)) fs.writeFileSync(path.join(folder, file), body);
      const archive = path.join(dir, 'build', `${version}.tar`);
      execFileSync('tar', ['-cf', archive, '-C', folder, '.']);
      return gzipSync(fs.readFileSync(archive));
    };
    fs.mkdirSync(path.join(dir, 'releases', '1.0.0'), { recursive: true });
    fs.copyFileSync(fixture('folder-server.mjs'), path.join(dir, 'releases', '1.0.0', 'server.mjs'));
    fs.writeFileSync(path.join(dir, 'releases', '1.0.0', 'version.txt'), '1.0.0');
    fs.symlinkSync('releases/1.0.0', path.join(dir, 'current'));
    return { dir, current: path.join(dir, 'current'), release };
  }

  async function start(current: string, server: ReleaseServer, config: Record<string, unknown> = {}, fetcherOptions: Record<string, unknown> = {}): Promise<RunningMaster> {
    const spec = {
      addresses: ['127.0.0.1:0'], bundle: current, fetchUrl: server.url('/app.tar.gz'), fetcherOptions,
      config: { readyTimeout: 3000, ...config },
      exec: { command: process.execPath, args: [path.join(current, 'server.mjs')], readiness: { kind: 'notify' } },
    };
    const master = await startMaster(fixture('exec-master.mjs'), { env: { MASTER_SPEC: JSON.stringify(spec) } });
    cleanups.push(() => master.stop());
    return master;
  }

  test('a .tar.gz release is extracted, checked, swapped in by its symlink and served ready-first; bad ones are refused or rolled back', async () => {
    const { current, release } = layout();
    const server = await startReleaseServer();
    cleanups.push(() => server.close());
    server.publish('/app.tar.gz', release('1.0.0'));
    const master = await start(current, server);
    await master.waitFor('upgrade-skipped', (event) => event.why === 'same-sha256');
    assert.equal((await ask(master.port)).version, '1.0.0');

    const load = new Load({ port: master.port, keepAlive: true, concurrency: 4, maxMs: 30_000 });
    server.publish('/app.tar.gz', release('2.0.0'));
    await master.waitFor('upgrade-applied');
    assert.equal((await ask(master.port)).version, '2.0.0');
    assert.match(fs.readlinkSync(current), /^releases\/[0-9a-f]{16}$/);
    assert.equal(fs.readlinkSync(`${current}.previous`), 'releases/1.0.0');

    server.publish('/app.tar.gz', release('2.1.0', { broken: '' }));
    assert.equal((await master.waitFor('upgrade-rejected')).code, 'ERR_OVERSEER_CHECK_FAILED');

    server.publish('/app.tar.gz', release('3.0.0', { crash: '' }));
    await master.waitFor('upgrade-rolled-back');
    assert.equal((await ask(master.port)).version, '2.0.0', 'the serving release stays');
    assert.match(fs.readFileSync(path.join(current, 'version.txt'), 'utf8'), /2\.0\.0/, 'the link points at the good release again');

    server.publish('/app.tar.gz', gzipSync(tar([{ name: '../escape', body: 'x' }])));
    assert.match((await master.waitFor('upgrade-rejected', (event) => /outside/.test(event.error))).error, /would land outside/);

    const result = await load.stop();
    assert.deepEqual(result.failures, []);
    const leftovers = fs.readdirSync(path.dirname(fs.realpathSync(current))).filter((name) => name.includes('.overseer-'));
    assert.deepEqual(leftovers, []);
  });

  test('attacker: a link-chain archive with the .minisig of another file is refused and writes nothing outside', async () => {
    const { dir, current } = layout();
    // The sentinel beside the install: the chain's u0 climbs from releases/<temp> to `dir`.
    fs.mkdirSync(path.join(dir, 'outside'));
    fs.writeFileSync(path.join(dir, 'outside', 'keep.txt'), 'mine');
    const key = createMinisignKey();
    const server = await startReleaseServer();
    cleanups.push(() => server.close());
    server.publish('/app.tar.gz', gzipSync(tar(linkChain(1, 'outside/pwned', 'written by the attacker'))), {
      signature: key.sign(Buffer.from('some other file')),
    });
    const master = await start(current, server, { verify: { publicKey: key.publicKey } }, { signatureUrl: server.url('/app.tar.gz.minisig') });
    const rejected = await master.waitFor('upgrade-rejected');
    assert.ok(['ERR_OVERSEER_UNSAFE_ARCHIVE', 'ERR_OVERSEER_SIGNATURE_INVALID'].includes(rejected.code), rejected.code);
    assert.equal(fs.existsSync(path.join(dir, 'outside', 'pwned')), false, 'nothing at the real target of the chain');
    assert.deepEqual(fs.readdirSync(path.join(dir, 'outside')), ['keep.txt']);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['current', 'outside', 'releases']);
    // Temps of a poll in flight (the next download of the same release) may come and go.
    assert.deepEqual(fs.readdirSync(path.join(dir, 'releases')).filter((name) => !name.includes('.overseer-')), ['1.0.0'], 'no release folder installed');
    assert.equal((await ask(master.port)).version, '1.0.0', 'the running child still serves');
    assert.equal(fs.readlinkSync(current), 'releases/1.0.0');
  });

  test('attacker: the live release offered again (no ETag, no Last-Modified) stays installed and current never dangles', async () => {
    const { current, release } = layout();
    const server = await startReleaseServer();
    cleanups.push(() => server.close());
    const bytes = release('2.0.0');
    server.publish('/app.tar.gz', bytes, { etag: false, lastModified: false });
    const master = await start(current, server);
    await master.waitFor('upgrade-applied');
    const live = fs.realpathSync(current);
    assert.equal(path.basename(live).length, 16);
    // Every poll downloads the live release again; two of them must leave it where it is.
    const downloads = () => server.requests.filter((request) => request.method === 'GET' && request.path === '/app.tar.gz').length;
    const after = downloads();
    await until('two more downloads of the live release', () => (downloads() >= after + 2 ? true : undefined), 15_000);
    await until('the master to finish with them', () => (master.events.some((event) => event.type === 'upgrade-skipped' || event.type === 'upgrade-rejected') ? true : undefined));
    assert.equal(fs.realpathSync(current), live, 'current resolves to the live folder');
    assert.equal(fs.readFileSync(path.join(current, 'version.txt'), 'utf8'), '2.0.0');
    assert.equal((await ask(master.port)).version, '2.0.0');
    assert.equal(master.events.filter((event) => event.type === 'upgrade-applied').length, 1);
  });
});
