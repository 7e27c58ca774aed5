/**
 * The release-folder extractor: real archives from tar, and hostile ones written by hand —
 * every refusal is ERR_OVERSEER_UNSAFE_ARCHIVE and nothing lands outside the folder.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { extractTar } from '../../src/upgrade/tar.ts';
import { manifestSha256 } from '../../src/upgrade/hash.ts';
import { tempDir } from '../helpers/master.ts';
import { linkChain, listing, pax, tar, type TarEntry } from './tar-archive.ts';

/** Extracts into `<base>/r1/r2/root`, so a climb of up to three levels stays inside `base`. */
async function extracted(archive: Buffer): Promise<string> {
  const base = tempDir();
  const file = path.join(base, 'release.tar');
  fs.writeFileSync(file, archive);
  const root = path.join(base, 'r1', 'r2', 'root');
  fs.mkdirSync(root, { recursive: true });
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
      { name: 'lib/dirlink', type: '2', link: '../bin' },
      { name: 'lib/via', type: '2', link: 'dirlink/server' },
      { name: 'later', type: '2', link: 'made/later.txt' },
      { name: 'made/later.txt', body: 'dangling until now' },
    ]));
    assert.equal(fs.readFileSync(path.join(root, 'lib/a.txt'), 'utf8'), 'a');
    assert.ok(fs.statSync(path.join(root, 'bin/server')).mode & 0o100);
    assert.equal(fs.readlinkSync(path.join(root, 'lib/link')), '../bin/server');
    assert.equal(fs.readFileSync(path.join(root, 'lib/via'), 'utf8'), '#!/bin/sh\necho hi\n');
    assert.equal(fs.readFileSync(path.join(root, 'later'), 'utf8'), 'dangling until now');
    // An archive from the real tar, with a name longer than 100 bytes (pax or GNU long names).
    for (const format of ['gnu', 'pax', 'ustar']) {
      const source = tempDir();
      const long = format === 'ustar' ? `${'d'.repeat(60)}/${'f'.repeat(80)}.txt` : `${'d'.repeat(120)}/${'f'.repeat(140)}.txt`;
      fs.mkdirSync(path.join(source, path.dirname(long)), { recursive: true });
      fs.writeFileSync(path.join(source, long), 'long');
      fs.symlinkSync(`../${path.basename(long)}`, path.join(source, path.dirname(long), 'up'));
      const archive = path.join(tempDir(), 'real.tar');
      execFileSync('tar', [`--format=${format}`, '-cf', archive, '-C', source, '.']);
      const into = path.join(tempDir(), 'into');
      fs.mkdirSync(into);
      await extractTar(archive, into);
      assert.equal(fs.readFileSync(path.join(into, long), 'utf8'), 'long', format);
      assert.equal(await manifestSha256(into), await manifestSha256(source), format);
    }
  });

  test('reads pax path and linkpath records', async () => {
    const name = `${'p'.repeat(150)}/file.txt`;
    const root = await extracted(tar([
      { name: 'PaxHeader', type: 'x', body: pax({ path: name }) },
      { name: 'ignored', body: 'pax' },
      { name: 'PaxHeader', type: 'x', body: pax({ linkpath: name }) },
      { name: 'link', type: '2', link: 'ignored' },
    ]));
    assert.equal(fs.readFileSync(path.join(root, name), 'utf8'), 'pax');
    assert.equal(fs.readlinkSync(path.join(root, 'link')), name);
  });

  const hostile: Array<[string, TarEntry[], RegExp]> = [
    ['an absolute path', [{ name: '/tmp/overseer-escape', body: 'x' }], /absolute path/],
    ['a .. component', [{ name: 'a/../../escape', body: 'x' }], /\.\. component/],
    ['a symlink to an absolute path', [{ name: 'etc', type: '2', link: '/etc' }], /leads outside/],
    ['a symlink that climbs out', [{ name: 'a/up', type: '2', link: '../../..' }], /leads outside/],
    ['a dangling link that climbs out past a missing folder', [{ name: 'm', type: '2', link: 'missing/../..' }], /leads outside/],
    ['a file written through a link', [{ name: 'in', type: '5' }, { name: 'out', type: '2', link: 'in' }, { name: 'out/x', body: 'x' }], /goes through the link "out"/],
    ['a directory made through a link', [{ name: 'in', type: '5' }, { name: 'out', type: '2', link: 'in' }, { name: 'out/sub/', type: '5' }], /goes through the link/],
    // Each link is inside when it is made; the finished tree sends `a` out (found by the last pass).
    ['a link made outside later by another link', [{ name: 'a', type: '2', link: 'x/y/../..' }, { name: 'x/', type: '5' }, { name: 'x/y', type: '2', link: '..' }], /"a" -> "x\/y\/..\/.." leads outside/],
    ['an earlier link turned outside by a later one', [{ name: 'a', type: '2', link: 'x/y' }, { name: 'x', type: '2', link: '.' }, { name: 'y', type: '2', link: '..' }], /leads outside/],
    ['a loop of links', [{ name: 'a', type: '2', link: 'b' }, { name: 'b', type: '2', link: 'a/x' }], /loop of links|leads outside/],
    ['a hard link', [{ name: 'hard', type: '1', link: '/etc/passwd' }], /hard link/],
    ['a hard link to a file inside', [{ name: 'f', body: 'x' }, { name: 'hard', type: '1', link: 'f' }], /hard link/],
    ['a device', [{ name: 'dev', type: '3' }], /character device/],
    ['a FIFO', [{ name: 'fifo', type: '6' }], /FIFO/],
    ['a second entry over a link', [{ name: 'l', type: '2', link: 'x' }, { name: 'l', body: 'x' }], /EEXIST/],
    ['a file over a file', [{ name: 'f', body: 'x' }, { name: 'f', body: 'y' }], /EEXIST/],
    ['a pax path with ..', [{ name: 'PaxHeader', type: 'x', body: pax({ path: '../escape' }) }, { name: 'fine', body: 'x' }], /\.\. component/],
    ['a GNU long name that is absolute', [{ name: '././@LongLink', type: 'L', body: '/tmp/overseer-long-escape\0' }, { name: 'fine', body: 'x' }], /absolute path/],
    ['a malformed pax header', [{ name: 'PaxHeader', type: 'x', body: '99 path=x\n' }, { name: 'f', body: 'x' }], /pax header is malformed/],
  ];
  for (const [name, entries, message] of hostile) {
    test(`refuses ${name}`, async () => {
      await assert.rejects(extracted(tar(entries)), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ERR_OVERSEER_UNSAFE_ARCHIVE', error.message);
        assert.match(error.message, message);
        return true;
      });
    });
  }

  test('refuses the link chain of issue 9 and writes nothing outside the folder', async () => {
    const base = tempDir();
    fs.mkdirSync(path.join(base, 'outside'));
    fs.writeFileSync(path.join(base, 'outside', 'keep.txt'), 'mine');
    const root = path.join(base, 'r1', 'r2', 'root');
    fs.mkdirSync(root, { recursive: true });
    const file = path.join(base, 'chain.tar');
    // u1 resolves to `base` (three levels above root): the file would land in base/outside.
    fs.writeFileSync(file, tar(linkChain(2, 'outside/pwned', 'written by the attacker')));
    await assert.rejects(extractTar(file, root), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_OVERSEER_UNSAFE_ARCHIVE');
      assert.match(error.message, /leads outside|goes through the link/);
      return true;
    });
    assert.equal(fs.existsSync(path.join(base, 'outside', 'pwned')), false, 'nothing written at the real target');
    assert.deepEqual(listing(path.join(base, 'outside')), ['keep.txt']);
    assert.deepEqual(listing(base).filter((name) => !name.startsWith('r1')), ['chain.tar', 'outside', 'outside/keep.txt']);
  });

  test('refuses a truncated or non-tar file', async () => {
    await assert.rejects(extracted(tar([{ name: 'a', body: 'x'.repeat(2000) }]).subarray(0, 1024)), /ERR_OVERSEER_UNSAFE_ARCHIVE|ends inside an entry/);
    await assert.rejects(extracted(tar([{ name: 'a', body: 'x' }]).subarray(0, 1024)), /ends without/);
    await assert.rejects(extracted(Buffer.alloc(1024, 7)), /not an octal number|checksum does not match/);
    const bad = tar([{ name: 'a', body: 'x' }]);
    bad[0] = 'b'.charCodeAt(0);
    await assert.rejects(extracted(bad), /checksum does not match/);
  });
});
