/**
 * `overseer deploy` against someone who can write an app's command/ or release/ folder (or
 * plant links beside them): a real `overseer deploy` process on a temp folder, the attacker's
 * files, and the user-visible outcome: nothing outside is written, deleted or published, and
 * the current release keeps serving.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { until } from '../helpers/master.ts';
import { createMinisignKey } from '../../support/minisign.ts';
import { archives, cleanUp, command, get, makeApp, stage, startDeploy, tempDir, versionIn, writeRelease, type Deploy } from './deploy-helpers.ts';

after(cleanUp);

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Every path below `dir`, with the text of each file and the target of each link. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const file = path.join(dir, name);
    const stat = fs.lstatSync(file);
    out[name] = stat.isSymbolicLink() ? `-> ${fs.readlinkSync(file)}` : stat.isFile() ? fs.readFileSync(file, 'utf8') : '/';
  }
  return out;
}

describe('overseer deploy: hostile folders', () => {
  const dir = tempDir('overseer-deploy-hostile-');
  const outside = tempDir('overseer-deploy-victim-');
  const key = createMinisignKey();
  const web = makeApp(dir, 'web', { version: 'v1', extra: { publicKey: key.publicKey } });
  const files = makeApp(dir, 'files', { version: 'f1' });
  let deploy: Deploy;
  let port = 0;

  before(async () => {
    // A folder of someone else's with a few sub-folders, which archive/ is made to point at.
    for (const name of ['a', 'b', 'c']) fs.mkdirSync(path.join(outside, 'victim-archive', name), { recursive: true });
    fs.rmSync(path.join(files, 'archive'), { recursive: true, force: true });
    fs.symlinkSync(path.join(outside, 'victim-archive'), path.join(files, 'archive'));
    deploy = startDeploy(dir, ['--archives', '1']);
    port = Number((await deploy.line(/web: listening on 127\.0\.0\.1:(\d+)/, 'web to listen'))[1]);
    await until('both apps ready', () => (deploy.stdout().includes('v1 ready') && deploy.stdout().includes('f1 ready') ? true : undefined), 15_000);
  });
  after(async () => {
    if (deploy.process.exitCode === null) {
      deploy.process.kill('SIGKILL');
      await deploy.exited;
    }
  });

  test('a symlink planted in command/ where the .failed report is written does not make deploy overwrite its target', async () => {
    const victim = path.join(outside, 'victim.txt');
    fs.writeFileSync(victim, 'precious\n');
    // The temporary name the report used to be written under, pointing at the victim.
    const pid = deploy.process.pid ?? 0;
    fs.symlinkSync(victim, path.join(web, 'command', `.release.failed.${pid}.tmp`));
    fs.rmSync(path.join(web, 'release'), { recursive: true, force: true });
    fs.mkdirSync(path.join(web, 'release'));
    fs.writeFileSync(path.join(web, 'release', '.ready'), '');
    const failed = await command(web, 'release');
    assert.match(failed ?? '', /^ERR_OVERSEER_RELEASE_INVALID: release\/ is empty/);
    assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'the file the link points at is unchanged');
    assert.ok(fs.lstatSync(path.join(web, 'command', 'release.failed')).isFile(), 'the report is a file of its own');
    assert.equal((await get(port)).version, 'v1');
  });

  test('a symlinked archive/ is refused: nothing outside is deleted, and current/ keeps serving', async () => {
    const before = snapshot(path.join(outside, 'victim-archive'));
    stage(files, 'f2');
    const failed = await command(files, 'release');
    assert.deepEqual(snapshot(path.join(outside, 'victim-archive')), before, 'nothing outside was deleted or added');
    assert.match(failed ?? '', /^ERR_OVERSEER_UNSAFE_FOLDER: \S+\/files\/archive is a symlink/);
    assert.match(failed ?? '', /replace it with a folder/);
    assert.equal(versionIn(path.join(files, 'current')), 'f1');
    assert.ok(deploy.stdout().includes('f1 ready') && !deploy.stdout().includes('f2 ready'));
    assert.match(deploy.stderr(), /files: error: \S+\/files\/archive is a symlink/, 'reported when the app was found');
  });

  test('a release whose links chain out of release/ is refused, even with a signed SHA256SUMS; nothing outside is published', async () => {
    fs.writeFileSync(path.join(web, 'secret.env'), 'PASSWORD=hunter2\n');
    const release = stage(web, 'v2', { marker: false, sums: true });
    // d/l -> .. and d/up -> l/.. each look inside release/ as text; d/up is really the app folder.
    fs.mkdirSync(path.join(release, 'd'));
    fs.symlinkSync('..', path.join(release, 'd', 'l'));
    fs.symlinkSync('l/..', path.join(release, 'd', 'up'));
    fs.symlinkSync('d/up/secret.env', path.join(release, 'public.txt'));
    assert.equal(fs.readFileSync(path.join(release, 'public.txt'), 'utf8'), 'PASSWORD=hunter2\n', 'the chain does reach out');
    fs.writeFileSync(path.join(release, 'SHA256SUMS.minisig'), key.sign(fs.readFileSync(path.join(release, 'SHA256SUMS'))));
    fs.writeFileSync(path.join(release, '.ready'), '');
    const failed = await command(web, 'release');
    assert.equal(fs.existsSync(path.join(web, 'current', 'public.txt')), false, 'no link to the secret went live');
    assert.match(failed ?? '', /^ERR_OVERSEER_RELEASE_INVALID: release\/d\/up is a symlink that resolves to \S+\/web \(through l\/\.\.\), outside release\//);
    assert.equal((await get(port)).version, 'v1', 'the current release still serves');
    assert.equal(versionIn(path.join(web, 'current')), 'v1');
  });

  test('a file changed after verification: what goes live is what was verified', async () => {
    const release = stage(web, 'v3', { marker: false, sums: true });
    fs.writeFileSync(path.join(release, 'SHA256SUMS.minisig'), key.sign(fs.readFileSync(path.join(release, 'SHA256SUMS'))));
    const verified = sha256(path.join(release, 'VERSION'));
    // Whoever can write release/ keeps VERSION open, and rewrites it once it was verified.
    const fd = fs.openSync(path.join(release, 'VERSION'), 'r+');
    try {
      fs.writeFileSync(path.join(release, '.ready'), '');
      const from = deploy.stderr().length;
      fs.writeFileSync(path.join(web, 'command', 'release'), '');
      await deploy.line(/web: release verified: 2 files match SHA256SUMS, signed/, 'the release to be verified', from);
      fs.ftruncateSync(fd, 0);
      fs.writeSync(fd, 'evil\n', 0);
    } finally {
      fs.closeSync(fd);
    }
    await until('command/release to be handled', () => (fs.existsSync(path.join(web, 'command', 'release')) ? undefined : true), 20_000);
    assert.equal(fs.existsSync(path.join(web, 'command', 'release.failed')), false);
    assert.equal(sha256(path.join(web, 'current', 'VERSION')), verified, 'current/VERSION is the verified file');
    assert.equal((await get(port)).version, 'v3');
    assert.deepEqual(archives(web).length, 1);
  });

  test('a symlinked command/ is refused with a message naming it', async () => {
    // Built aside and moved in whole, so deploy never sees it without its link.
    const built = makeApp(outside, 'late', { listen: false });
    writeRelease(path.join(built, 'current'), 'l1');
    const real = path.join(outside, 'commands');
    fs.mkdirSync(real);
    fs.symlinkSync(real, path.join(built, 'command'));
    const app = path.join(dir, 'late');
    fs.renameSync(built, app);
    await deploy.line(/late: error: \S+\/late\/command is a symlink to \S+; replace it with a folder/, 'the symlinked command/ to be reported');
    fs.writeFileSync(path.join(real, 'stop'), '');
    fs.writeFileSync(path.join(web, 'command', 'nothing'), '');
    // A command dropped after it in another app is handled: the symlinked one was looked at and left alone.
    await until('the other app to handle its command', () => (fs.existsSync(path.join(web, 'command', 'nothing')) ? undefined : true));
    assert.deepEqual(fs.readdirSync(real), ['stop'], 'nothing was acted on or written through the link');
    assert.ok(fs.lstatSync(path.join(app, 'command')).isSymbolicLink());
  });
});
