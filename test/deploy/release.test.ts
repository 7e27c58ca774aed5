/**
 * The checks behind `overseer deploy`'s release command, without processes: the private copy of
 * release/ and the symlink check on it, on real folders.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { isOverseerError } from '../../src/errors.ts';
import { verifyRelease } from '../../src/deploy/release.ts';
import { openStaged, stageCopy } from '../../src/deploy/staging.ts';
import { cleanUp, tempDir } from './deploy-helpers.ts';

after(cleanUp);

/** An app folder with release/ holding `files` (text) and `links` (name → target). */
function release(files: Record<string, string>, links: Record<string, string> = {}): { app: string; release: string } {
  const app = tempDir('overseer-deploy-unit-');
  const dir = path.join(app, 'release');
  fs.mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  for (const [name, target] of Object.entries(links)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.symlinkSync(target, path.join(dir, name));
  }
  return { app, release: dir };
}

async function verifyCopy(app: string, dir: string) {
  const staging = await stageCopy(dir, app);
  try {
    return await verifyRelease(staging, { label: 'web', origin: dir });
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

const refused = (pattern: RegExp) => (error: unknown) => {
  assert.ok(isOverseerError(error, 'ERR_OVERSEER_RELEASE_INVALID'), String(error));
  assert.match(error.message, pattern);
  return true;
};

test('links that stay inside the release pass, however they are spelled', async () => {
  const { app, release: dir } = release({ 'lib/a.js': 'a', 'b.txt': 'b' }, { 'here': '.', 'lib/up': '..', 'lib/b': '../b.txt', 'x': 'lib/up/lib/a.js' });
  assert.deepEqual(await verifyCopy(app, dir), { checked: 0, keyId: undefined });
});

test('links that leave the release are refused: a chain, an absolute link, a link into release/ itself, a dangling one', async () => {
  const chain = release({ 'a': 'a' }, { 'd/l': '..', 'd/up': 'l/..', 'secret': 'd/up/secret.env' });
  fs.writeFileSync(path.join(chain.app, 'secret.env'), 'PASSWORD=1');
  await assert.rejects(verifyCopy(chain.app, chain.release), refused(/^release\/d\/up is a symlink that resolves to \S+ \(through l\/\.\.\), outside release\//));

  const absolute = release({ 'a': 'a' }, { 'passwd': '/etc/passwd' });
  await assert.rejects(verifyCopy(absolute.app, absolute.release), refused(/release\/passwd is a symlink that resolves to \/etc\/passwd/));

  // What release/ holds later is not what was verified: a link back into it is outside too.
  const back = release({ 'a': 'a' });
  fs.symlinkSync(path.join(back.release, 'a'), path.join(back.release, 'live'));
  await assert.rejects(verifyCopy(back.app, back.release), refused(/release\/live is a symlink that resolves to \S+\/release\/a/));

  const dangling = release({ 'a': 'a' }, { 'later': 'logs/app.log' });
  await assert.rejects(verifyCopy(dangling.app, dangling.release), refused(/release\/later is a symlink to logs\/app\.log, which does not resolve/));
});

test('the copy is private until verified, then takes release/\'s mode without write for others; .ready stays behind', async () => {
  const { app, release: dir } = release({ 'server': '#!/bin/sh\n', 'VERSION': 'v1\n', '.ready': '' });
  fs.chmodSync(path.join(dir, 'server'), 0o777);
  fs.chmodSync(dir, 0o775);
  const staging = await stageCopy(dir, app);
  assert.equal(fs.statSync(staging).mode & 0o777, 0o700);
  assert.deepEqual(fs.readdirSync(staging).sort(), ['VERSION', 'server']);
  assert.equal(fs.statSync(path.join(staging, 'server')).mode & 0o777, 0o755);
  await openStaged(staging, dir);
  assert.equal(fs.statSync(staging).mode & 0o777, 0o755);
  const sums = createHash('sha256').update('v1\n').digest('hex');
  assert.equal(createHash('sha256').update(fs.readFileSync(path.join(staging, 'VERSION'))).digest('hex'), sums);
});

test('a release holding something other than files, folders and links is refused when copied', async (t) => {
  const { app, release: dir } = release({ 'a': 'a' });
  const fifo = path.join(dir, 'pipe');
  try {
    (await import('node:child_process')).execFileSync('mkfifo', [fifo]);
  } catch {
    t.skip('mkfifo is not available');
    return;
  }
  await assert.rejects(stageCopy(dir, app), refused(/release\/pipe is neither a file, a folder nor a symlink/));
  assert.deepEqual(fs.readdirSync(app).sort(), ['release'], 'the partial copy is removed');
});
