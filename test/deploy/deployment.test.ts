import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Load } from '../helpers/load.ts';
import { fixture, isAlive, until } from '../helpers/master.ts';
import { createMinisignKey } from '../../support/minisign.ts';
import { archives, cleanUp, command, get, makeApp, stage, startDeploy, tempDir, versionIn, type Deploy } from './deploy-helpers.ts';

after(cleanUp);

describe('overseer deploy: a folder of applications', () => {
  const dir = tempDir('overseer-deploy-');
  const web = makeApp(dir, 'web', { version: 'v1' });
  const key = createMinisignKey();
  const worker = makeApp(dir, 'worker', { version: 'w1', listen: false, extra: { publicKey: key.publicKey } });
  let deploy: Deploy;
  let port = 0;

  before(async () => {
    deploy = startDeploy(dir, ['--archives', '2']);
    port = Number((await deploy.line(/web: listening on 127\.0\.0\.1:(\d+)/, 'web to listen'))[1]);
    await until('both apps ready', () => (deploy.stdout().includes('v1 ready') && deploy.stdout().includes('w1 ready') ? true : undefined));
  });
  after(async () => {
    if (deploy.process.exitCode === null) {
      deploy.process.kill('SIGKILL');
      await deploy.exited;
    }
  });

  test('a half-copied release waits for its marker; then it goes live under load with no failed request', async () => {
    assert.equal((await get(port)).version, 'v1');
    stage(web, 'v2', { marker: false });
    const from = deploy.stderr().length;
    fs.writeFileSync(path.join(web, 'command', 'release'), '');
    await deploy.line(/web: waiting: release\/ has no \.ready marker/, 'the release to wait for its marker', from);
    assert.equal((await get(port)).version, 'v1', 'a release without its marker is not taken');
    assert.ok(fs.existsSync(path.join(web, 'command', 'release')), 'the command waits too');

    const load = new Load({ port, keepAlive: false, concurrency: 4, maxMs: 20_000 });
    await until('some answers', () => (load.result.answers.length > 20 ? true : undefined));
    fs.writeFileSync(path.join(web, 'release', '.ready'), '');
    await until('command/release to be handled', () => (fs.existsSync(path.join(web, 'command', 'release')) ? undefined : true), 15_000);
    await until('answers from v2', () => (load.result.answers.filter((answer) => answer.version === 'v2').length > 20 ? true : undefined));
    const result = await load.stop();
    assert.deepEqual(result.failures, []);
    assert.deepEqual([...new Set(result.answers.map((answer) => answer.version))].sort(), ['v1', 'v2']);
    assert.equal(fs.existsSync(path.join(web, 'command', 'release.failed')), false);
    assert.equal(versionIn(path.join(web, 'current')), 'v2');
    assert.deepEqual(fs.readdirSync(path.join(web, 'release')), [], 'release/ is there again, empty');
    assert.deepEqual(fs.existsSync(path.join(web, 'current', '.ready')), false);
    const [archived] = archives(web);
    assert.equal(archives(web).length, 1);
    assert.equal(versionIn(path.join(web, 'archive', archived ?? '')), 'v1');
  });

  test('a release that does not match its SHA256SUMS is refused, and current/ stays', async () => {
    const release = stage(web, 'v3', { sums: true });
    fs.writeFileSync(path.join(release, 'VERSION'), 'v3-tampered\n');
    const failed = await command(web, 'release');
    assert.match(failed ?? '', /^ERR_OVERSEER_CHECKSUM_MISMATCH: release\/VERSION does not match SHA256SUMS/);
    assert.equal((await get(port)).version, 'v2');
    assert.equal(versionIn(path.join(web, 'current')), 'v2');
    assert.equal(versionIn(release), 'v3-tampered', 'the refused release stays in release/ for the deployer to see');
    assert.equal(archives(web).length, 1);

    stage(web, 'v3', { sums: true });
    fs.writeFileSync(path.join(release, 'extra.txt'), 'not listed');
    assert.match((await command(web, 'release')) ?? '', /^ERR_OVERSEER_RELEASE_INVALID: SHA256SUMS does not list release\/extra\.txt/);
    assert.equal((await get(port)).version, 'v2');
  });

  test('a release that does not get ready is rolled back while the old one keeps serving', async () => {
    stage(web, 'v3', { extra: { BROKEN: '' } });
    const load = new Load({ port, keepAlive: false, concurrency: 4, maxMs: 20_000 });
    const failed = await command(web, 'release');
    const result = await load.stop();
    assert.match(failed ?? '', /^ERR_OVERSEER_ROLLED_BACK: the release did not get ready \(child \d+ exited \(code 3\) before it was ready\); the previous release is current again and kept serving; the failed one is archive\/\S+-failed/);
    assert.deepEqual(result.failures, []);
    assert.ok(result.answers.length > 0);
    assert.deepEqual([...new Set(result.answers.map((answer) => answer.version))], ['v2']);
    assert.equal(versionIn(path.join(web, 'current')), 'v2');
    const failedArchive = archives(web).find((name) => name.endsWith('-failed'));
    assert.equal(versionIn(path.join(web, 'archive', failedArchive ?? '')), 'v3');
    assert.equal(archives(web).length, 2);
  });

  test('rollback makes the newest good archive current again, with a handoff; archives stay bounded', async () => {
    assert.equal(await command(web, 'rollback'), undefined);
    assert.equal((await get(port)).version, 'v1');
    assert.equal(versionIn(path.join(web, 'current')), 'v1');
    const names = archives(web);
    assert.equal(names.length, 2);
    assert.ok(names.some((name) => name.endsWith('-failed')));
    const rolledBack = names.find((name) => name.endsWith('-rolled-back'));
    assert.equal(versionIn(path.join(web, 'archive', rolledBack ?? '')), 'v2');

    // Failed and rolled-back releases are never taken by a rollback.
    assert.match((await command(web, 'rollback')) ?? '', /^ERR_OVERSEER_NO_ARCHIVE: archive\/ holds no earlier release/);
    assert.equal((await get(port)).version, 'v1');

    stage(web, 'v4');
    const from = deploy.stderr().length;
    assert.equal(await command(web, 'release'), undefined);
    assert.equal((await get(port)).version, 'v4');
    const after = archives(web);
    assert.equal(after.length, 2, '--archives 2 keeps two');
    assert.ok(!after.some((name) => name.endsWith('-failed')), 'the oldest archive went');
    assert.equal(versionIn(path.join(web, 'archive', after.at(-1) ?? '')), 'v1');
    await deploy.line(/web: removed old archives \S+-failed/, 'the prune report', from);
  });

  test('an app without listeners takes a signed release, and refuses one signed with another key', async () => {
    const release = stage(worker, 'w2', { sums: true, marker: false });
    fs.writeFileSync(path.join(release, 'SHA256SUMS.minisig'), key.sign(fs.readFileSync(path.join(release, 'SHA256SUMS'))));
    fs.writeFileSync(path.join(release, '.ready'), '');
    assert.equal(await command(worker, 'release'), undefined);
    await until('w2 to run', () => (deploy.stdout().includes('w2 ready') ? true : undefined));
    assert.match(deploy.stderr(), /worker: release verified: 2 files match SHA256SUMS, signed by minisign key [0-9A-F]{16}/);
    assert.equal(versionIn(path.join(worker, 'current')), 'w2');

    const other = stage(worker, 'w3', { sums: true, marker: false });
    fs.writeFileSync(path.join(other, 'SHA256SUMS.minisig'), createMinisignKey().sign(fs.readFileSync(path.join(other, 'SHA256SUMS'))));
    fs.writeFileSync(path.join(other, '.ready'), '');
    assert.match((await command(worker, 'release')) ?? '', /^ERR_OVERSEER_SIGNATURE_INVALID: the key id in release\/SHA256SUMS\.minisig/);
    fs.rmSync(path.join(other, 'SHA256SUMS.minisig'));
    assert.match((await command(worker, 'release')) ?? '', /^ERR_OVERSEER_SIGNATURE_MISSING: worker\/app\.json has a publicKey but release\/SHA256SUMS\.minisig cannot be read/);
    assert.equal(versionIn(path.join(worker, 'current')), 'w2');
    assert.match((await command(worker, 'restart')) ?? '', /^ERR_OVERSEER_UNKNOWN_COMMAND: command\/restart names no command/);
  });

  test('stop and start commands stop and start one app', async () => {
    const servedBy = (await get(port)).pid;
    const masterPid = Number([...deploy.stderr().matchAll(/web: listening on \S+ \(master pid (\d+)\)/g)].at(-1)?.[1]);
    assert.ok(isAlive(masterPid) && isAlive(servedBy));
    assert.equal(await command(web, 'stop'), undefined);
    await until('web to be gone', () => (!isAlive(masterPid) && !isAlive(servedBy) ? true : undefined));
    await assert.rejects(get(port), /ECONNREFUSED/);
    assert.ok(deploy.stdout().includes('w2 ready') && !deploy.stdout().includes('w3'), 'the other app runs on');

    const from = deploy.stderr().length;
    assert.equal(await command(web, 'start'), undefined);
    port = Number((await deploy.line(/web: listening on 127\.0\.0\.1:(\d+)/, 'web to listen again', from))[1]);
    await deploy.line(/web: child \d+ ready/, 'web to be ready again', from);
    assert.equal((await get(port)).version, 'v4');
  });

  test('SIGTERM stops every app gracefully, then overseer deploy exits 0', async () => {
    const pids = [...deploy.stderr().matchAll(/(?:overseer run started \(pid|child) (\d+)/g)].map((match) => Number(match[1]));
    const alive = pids.filter(isAlive);
    assert.ok(alive.length >= 4, `two masters and two children run: ${alive.join(', ')}`);
    deploy.process.kill('SIGTERM');
    assert.equal(await deploy.exited, 0);
    assert.deepEqual(pids.filter(isAlive), []);
    assert.match(deploy.stderr(), /every app stopped/);
  });
});

describe('overseer deploy: quiet period and a first release', () => {
  test('an app with no current/ starts on its first release, taken after a quiet period without marker', async () => {
    const dir = tempDir('overseer-deploy-quiet-');
      const app = makeApp(dir, 'job', { listen: false });
    fs.mkdirSync(path.join(dir, 'typo'));
    fs.writeFileSync(path.join(dir, 'typo', 'app.json'), JSON.stringify({ comand: ['./server'] }));
    fs.mkdirSync(path.join(dir, 'notes'));
    const deploy = startDeploy(dir, ['--quiet-period', '300']);
    try {
      await deploy.line(/job: waiting: there is no current\/ yet/, 'the app to wait for a release');
      await deploy.line(/typo: error: typo\/app\.json has no option "comand" \(did you mean "command"\?\)/, 'the bad app.json to be reported');
      await deploy.line(/notes: error: \S+ has no app\.json; it is not an application folder and is left alone/, 'the stray folder to be reported');
      stage(app, 'j1', { marker: false });
      const staged = Date.now();
      assert.equal(await command(app, 'release'), undefined);
      assert.ok(Date.now() - staged >= 300, 'taken only after the quiet period');
      await until('j1 to run', () => (deploy.stdout().includes('j1 ready') ? true : undefined));
      assert.deepEqual(archives(app), []);

      // A release dropped on a stopped app starts it; when it fails, the previous one starts again.
      assert.equal(await command(app, 'stop'), undefined);
      stage(app, 'j2', { extra: { BROKEN: '' } });
      assert.match((await command(app, 'release')) ?? '', /^ERR_OVERSEER_ROLLED_BACK: the release did not get ready \(its first child exited \(code 3\) before it was ready\); the previous release is current again and was started again/);
      await until('j1 to run again', () => (deploy.stdout().split('j1 ready').length === 3 ? true : undefined));
      assert.equal(versionIn(path.join(app, 'current')), 'j1');
      deploy.process.kill('SIGTERM');
      assert.equal(await deploy.exited, 0);
    } finally {
      if (deploy.process.exitCode === null) deploy.process.kill('SIGKILL');
    }
  });

  test('bad usage exits 2 with a message', async () => {
    const run = (args: string[]) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [fixture('deploy-main.mjs'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.once('exit', (code) => resolve({ code, stderr }));
    });
    const none = await run([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no DIR: give the deployment folder/);
    const badArchives = await run(['/tmp', '--archives', 'many']);
    assert.equal(badArchives.code, 2);
    assert.match(badArchives.stderr, /--archives takes a whole number; got "many"/);
    const empty = tempDir();
    const missing = await run([path.join(empty, 'nope')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /the deployment folder \S+ cannot be read/);
  });
});
