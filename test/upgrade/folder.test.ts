import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, describe, test } from 'node:test';
import { extractTar } from '../../src/upgrade/tar.ts';
import { manifestSha256 } from '../../src/upgrade/hash.ts';
import { Load, ask } from '../helpers/load.ts';
import { fixture, startMaster, tempDir, type RunningMaster } from '../helpers/master.ts';
import { startReleaseServer, type ReleaseServer } from '../../support/release-server.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A tar archive of the given entries, written by hand so any entry, however hostile, can be made. */
function tar(entries: Array<{ name: string; type?: '0' | '2' | '1' | '5' | '3'; body?: string; link?: string; mode?: number }>): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = Buffer.from(entry.body ?? '');
    const header = Buffer.alloc(512);
    header.write(entry.name, 0, 100, 'utf8');
    header.write(`${(entry.mode ?? 0o644).toString(8).padStart(7, '0')}\0`, 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write(entry.type ?? '0', 156);
    header.write(entry.link ?? '', 157, 100, 'utf8');
    header.write('ustar\0', 257);
    header.write('00', 263);
    header.fill(' ', 148, 156);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

async function extracted(archive: Buffer): Promise<string> {
  const dir = tempDir();
  const file = path.join(dir, 'release.tar');
  fs.writeFileSync(file, archive);
  const root = path.join(dir, 'root');
  fs.mkdirSync(root);
  await extractTar(file, root);
  return root;
}

describe('tar extraction', () => {
  test('extracts files, directories, exec bits and links that stay inside; reads archives made by tar', async () => {
    const root = await extracted(tar([
      { name: 'bin/', type: '5' },
      { name: 'bin/server', body: '#!/bin/sh\necho hi\n', mode: 0o755 },
      { name: 'lib/a.txt', body: 'a' },
      { name: 'lib/link', type: '2', link: '../bin/server' },
    ]));
    assert.equal(fs.readFileSync(path.join(root, 'lib/a.txt'), 'utf8'), 'a');
    assert.ok(fs.statSync(path.join(root, 'bin/server')).mode & 0o100);
    assert.equal(fs.readlinkSync(path.join(root, 'lib/link')), '../bin/server');
    // An archive from the real tar, with a name longer than 100 bytes (pax or GNU long names).
    const source = tempDir();
    const long = `${'d'.repeat(60)}/${'f'.repeat(80)}.txt`;
    fs.mkdirSync(path.join(source, path.dirname(long)), { recursive: true });
    fs.writeFileSync(path.join(source, long), 'long');
    const archive = path.join(tempDir(), 'real.tar');
    execFileSync('tar', ['-cf', archive, '-C', source, '.']);
    const into = path.join(tempDir(), 'into');
    fs.mkdirSync(into);
    await extractTar(archive, into);
    assert.equal(fs.readFileSync(path.join(into, long), 'utf8'), 'long');
    assert.equal(await manifestSha256(into), await manifestSha256(source));
  });

  const hostile: Array<[string, Parameters<typeof tar>[0], RegExp]> = [
    ['an absolute path', [{ name: '/tmp/overseer-escape', body: 'x' }], /would land outside/],
    ['a .. component', [{ name: 'a/../../escape', body: 'x' }], /would land outside/],
    ['a symlink to an absolute path', [{ name: 'etc', type: '2', link: '/etc' }], /points outside/],
    ['a symlink that climbs out', [{ name: 'a/up', type: '2', link: '../../..' }], /points outside/],
    ['a file written through an outside link', [{ name: 'out', type: '2', link: '/tmp' }, { name: 'out/x', body: 'x' }], /points outside/],
    ['a hard link', [{ name: 'hard', type: '1', link: '/etc/passwd' }], /hard link/],
    ['a device', [{ name: 'dev', type: '3' }], /may not hold/],
    ['a second entry over a link', [{ name: 'l', type: '2', link: 'x' }, { name: 'l', body: 'x' }], /EEXIST/],
  ];
  for (const [name, entries, message] of hostile) {
    test(`refuses ${name}`, async () => {
      await assert.rejects(extracted(tar(entries)), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ERR_OVERSEER_CHECK_FAILED');
        assert.match(error.message, message);
        return true;
      });
    });
  }

  test('refuses a truncated or non-tar file', async () => {
    await assert.rejects(extracted(tar([{ name: 'a', body: 'x'.repeat(2000) }]).subarray(0, 1024)), /ends inside a file|ends without/);
    await assert.rejects(extracted(Buffer.alloc(1024, 7)), /checksum does not match/);
  });
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

  async function start(current: string, server: ReleaseServer): Promise<RunningMaster> {
    const spec = {
      addresses: ['127.0.0.1:0'], bundle: current, fetchUrl: server.url('/app.tar.gz'),
      config: { readyTimeout: 3000 },
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
});
