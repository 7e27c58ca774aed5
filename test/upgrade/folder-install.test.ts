/**
 * installFolder / discardFolder / swapFolder / pruneFolders / cleanupFolderDebris on real
 * folders: an installed release is never replaced or removed, a swap prunes what it may, and
 * what a killed master left is cleaned only when its owner is gone or it is old.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  DEFAULT_KEEP_RELEASES, cleanupFolderDebris, discardFolder, installFolder, pruneFolders, swapFolder,
} from '../../src/upgrade/folder.ts';
import { isAlive, root, tempDir, until } from '../helpers/master.ts';
import { tar } from './tar-archive.ts';

const started: number[] = [];
/** As folder.ts tags its temp names with the host. */
const host = createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8);
after(() => {
  for (const pid of started) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
});

/** `dir/current -> releases/1.0.0`, and a function writing a release archive. */
function layout() {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'releases', '1.0.0'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'releases', '1.0.0', 'version.txt'), '1.0.0');
  const current = path.join(dir, 'current');
  fs.symlinkSync('releases/1.0.0', current);
  const archive = (version: string) => {
    const file = path.join(dir, `${version}.tar`);
    fs.writeFileSync(file, tar([{ name: 'version.txt', body: version }]));
    return file;
  };
  return { dir, current, releases: path.join(dir, 'releases'), archive };
}

const old = (file: string, minutes: number) => {
  const when = new Date(Date.now() - minutes * 60_000);
  fs.utimesSync(file, when, when);
};

describe('installing release folders', () => {
  test('the same release again is not replaced: created is false and the live folder stays', async () => {
    const { current, releases, archive } = layout();
    const first = await installFolder(current, archive('2.0.0'));
    assert.equal(first.created, true);
    assert.equal(path.dirname(first.dir), releases);
    assert.equal(path.basename(first.dir), first.sha256.slice(0, 16));
    await swapFolder(current, first.dir);
    const inode = fs.statSync(first.dir).ino;
    const again = await installFolder(current, archive('2.0.0'));
    assert.deepEqual(again, { dir: first.dir, sha256: first.sha256, created: false });
    assert.equal(fs.statSync(first.dir).ino, inode, 'the live folder is the same folder, not a replacement');
    assert.equal(await discardFolder(again.dir), false, 'the live folder is refused');
    assert.equal(await discardFolder(again.dir, current), false);
    assert.equal(fs.readFileSync(path.join(current, 'version.txt'), 'utf8'), '2.0.0');
    assert.deepEqual(fs.readdirSync(releases).filter((name) => name.startsWith('.')), [], 'no temp left');
    // .previous (1.0.0) is refused too; a folder that is neither is removed.
    assert.equal(await discardFolder(path.join(releases, '1.0.0'), current), false);
    const spare = await installFolder(current, archive('3.0.0'));
    assert.equal(await discardFolder(spare.dir), true);
    assert.equal(fs.existsSync(spare.dir), false);
  });

  test('a refused archive leaves no temp folder and no release folder', async () => {
    const { dir, current, releases } = layout();
    const file = path.join(dir, 'bad.tar');
    fs.writeFileSync(file, tar([{ name: 'ok', body: 'x' }, { name: '../escape', body: 'x' }]));
    await assert.rejects(installFolder(current, file), { code: 'ERR_OVERSEER_UNSAFE_ARCHIVE' });
    assert.deepEqual(fs.readdirSync(releases), ['1.0.0']);
  });

  test('a swap prunes hash-named folders beyond keep, never the live one, .previous, a young one or a named one', async () => {
    const { current, releases, archive } = layout();
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { dir } = await installFolder(current, archive(`0.${i}`));
      old(dir, 60 - i); // made[0] oldest
      made.push(dir);
    }
    const [m0, m1, m2, m3, m4] = made as [string, string, string, string, string];
    const fresh = (await installFolder(current, archive('fresh'))).dir; // maybe another master's
    const name = (dir: string) => path.basename(dir);
    // Live m0, .previous 1.0.0 (named by the user: never pruned); keep the two newest others.
    assert.deepEqual((await swapFolder(current, m0, { keep: 2 })).sort(), [m1, m2, m3].sort());
    assert.deepEqual(fs.readdirSync(releases).sort(), ['1.0.0', name(m0), name(m4), name(fresh)].sort());
    // keep 0: live m4 and .previous m0 stay, and so does the young one.
    assert.deepEqual(await swapFolder(current, m4, { keep: 0 }), []);
    assert.equal(fs.readFileSync(path.join(current, 'version.txt'), 'utf8'), '0.4');
    assert.equal(fs.realpathSync(`${current}.previous`), m0);
    old(fresh, 30);
    assert.deepEqual(await pruneFolders(current, 0), [fresh]);
    assert.deepEqual(fs.readdirSync(releases).sort(), ['1.0.0', name(m0), name(m4)].sort());
    assert.ok(DEFAULT_KEEP_RELEASES >= 1);
    await assert.rejects(swapFolder(current, m4, { keep: -1 }), { code: 'ERR_OVERSEER_INVALID_CONFIG' });
  });
});

describe('debris of a killed master', () => {
  test('a kill -9 mid-extraction leaves a temp folder that is cleaned once its owner is gone; live and young debris stays', async () => {
    const { dir, current, releases } = layout();
    const fifo = path.join(dir, 'release.tar');
    execFileSync('mkfifo', [fifo]);
    // A master extracting a release that arrives slowly: half a file, then nothing.
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
      `const { installFolder } = await import(${JSON.stringify(path.join(root, 'src/upgrade/folder.ts'))});
       await installFolder(process.env.LINK, process.env.ARCHIVE);`,
    ], { cwd: root, env: { ...process.env, LINK: current, ARCHIVE: fifo }, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    started.push(child.pid as number);
    const writer = fs.createWriteStream(fifo);
    writer.on('error', () => {}); // EPIPE once the reader is killed
    const half = tar([{ name: 'a.txt', body: 'a' }, { name: 'big.bin', body: Buffer.alloc(64 * 1024, 1) }]).subarray(0, 32 * 1024);
    writer.write(half);
    const temp = await until('the temp folder with the first file', () => {
      const name = fs.readdirSync(releases).find((entry) => entry.startsWith(`.overseer-${child.pid}-`));
      return name !== undefined && fs.existsSync(path.join(releases, name, 'a.txt')) ? path.join(releases, name) : undefined;
    });
    assert.match(path.basename(temp), new RegExp(`^\\.overseer-${child.pid}-${host}-[0-9a-f]{16}\\.tmp\\.d$`));
    assert.deepEqual(await cleanupFolderDebris(current), [], 'a live master\'s extraction is spared');

    child.kill('SIGKILL');
    await exited;
    writer.destroy();
    const tag = (pid: number, on = host) => `${pid}-${on}-${'0123456789abcdef'}`;
    const deadLink = `${current}.overseer-${tag(child.pid as number)}.tmp`;
    const liveLink = `${current}.overseer-${tag(process.pid)}.tmp`;
    const oldLink = `${current}.previous.overseer-${process.pid}-${host}-fedcba9876543210.tmp`;
    // A pid of another host (a container sharing the folder) proves nothing: young, it stays.
    const otherHost = `${current}.overseer-${tag(child.pid as number, host === '00000000' ? '11111111' : '00000000')}.tmp`;
    for (const link of [deadLink, liveLink, oldLink, otherHost]) fs.symlinkSync('releases/1.0.0', link);
    const when = new Date(Date.now() - 2 * 3600_000);
    fs.lutimesSync(oldLink, when, when);
    fs.writeFileSync(path.join(dir, 'current.overseer-notes'), 'not ours');
    fs.mkdirSync(path.join(releases, '.overseer-unrelated'));

    assert.deepEqual((await cleanupFolderDebris(current)).sort(), [temp, deadLink, oldLink].sort());
    assert.deepEqual(fs.readdirSync(releases).sort(), ['.overseer-unrelated', '1.0.0']);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['current', 'current.overseer-notes', path.basename(liveLink), path.basename(otherHost), 'release.tar', 'releases'].sort());
    assert.equal(fs.readlinkSync(current), 'releases/1.0.0');
  });
});
