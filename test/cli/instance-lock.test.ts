import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { lockInstance } from '../../src/cli/instance-lock.ts';
import { cleanupCli, scratch } from '../helpers/cli.ts';

after(cleanupCli);

const log = { debug: () => {}, warn: () => {} };

describe('the pid file', () => {
  test('a symlink planted at the pid file path is replaced, never written through', async () => {
    const dir = scratch('overseer-pidfile-');
    const victim = path.join(dir, 'victim.conf');
    fs.writeFileSync(victim, 'precious\n');
    const pidFile = path.join(dir, 'master.pid');
    fs.symlinkSync(victim, pidFile);
    const lock = await lockInstance({ pidFile, log });
    try {
      assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'the link target is untouched');
      assert.ok(fs.lstatSync(pidFile).isFile(), 'the pid file is a regular file now');
      assert.equal(fs.readFileSync(pidFile, 'utf8'), `${process.pid}\n`);
    } finally {
      await lock.release();
    }
    assert.equal(fs.existsSync(pidFile), false, 'released: the pid file is gone');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['victim.conf'], 'no temp file left behind');
  });

  test('a dangling link does not make the master create a file where it points', async () => {
    const dir = scratch('overseer-pidfile-');
    const target = path.join(dir, 'elsewhere', 'created-by-master');
    fs.mkdirSync(path.dirname(target));
    const pidFile = path.join(dir, 'master.pid');
    fs.symlinkSync(target, pidFile);
    const lock = await lockInstance({ pidFile, log });
    try {
      assert.equal(fs.existsSync(target), false);
      assert.equal(fs.readFileSync(pidFile, 'utf8'), `${process.pid}\n`);
    } finally {
      await lock.release();
    }
  });
});
