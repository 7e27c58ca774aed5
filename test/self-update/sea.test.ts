/**
 * Single executable applications end to end: a real SEA (built once for the file, ~100 MB,
 * deleted after) as a selfUpdating() CLI and as a run() server, each upgraded to a second
 * build published as a GitHub release asset named for this platform and arch.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startGitHubApi, type GitHubApi } from '../../support/github-api.ts';
import { assetName, assetTest } from '../../fetchers/github-assets.ts';
import { ask } from '../helpers/load.ts';
import { isAlive, tempDir, until } from '../helpers/master.ts';
import { master } from '../helpers/ended.ts';
import { buildSea, seaToolSource, whyNoSea } from './sea.ts';
import { runTool } from './tool.ts';

const skip = whyNoSea();
const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

test('asset names with {platform} and {arch} are the names for this process', () => {
  assert.equal(assetName('mytool-{platform}-{arch}', 'linux', 'x64'), 'mytool-linux-x64');
  assert.equal(assetName('mytool-{platform}-{arch}.exe', 'win32', 'arm64'), 'mytool-win32-arm64.exe');
  const mine = assetTest('mytool-{platform}-{arch}');
  assert.ok(mine.test(`mytool-${process.platform}-${process.arch}`));
  assert.ok(!mine.test('mytool-{platform}-{arch}'));
  assert.ok(!mine.test(`mytool-${process.platform}-${process.arch}.sha256`));
});

describe('single executable applications (node:sea)', { skip }, () => {
  let work: string;
  let v1: string;
  let v2: string;
  let api: GitHubApi;
  const updaters = new Set<number>();

  before(async () => {
    work = tempDir('overseer-sea-');
    v1 = path.join(work, 'build-1.0.0');
    v2 = path.join(work, 'build-2.0.0');
    // Both at once, each in its own work folder: the steps wait on child processes and disk.
    await Promise.all([
      buildSea(seaToolSource('1.0.0'), v1, path.join(work, 'tmp-1')),
      buildSea(seaToolSource('2.0.0'), v2, path.join(work, 'tmp-2')),
    ]);
    api = await startGitHubApi({ owner: 'acme', repo: 'mytool' });
    const other = process.arch === 'arm64' ? 'x64' : 'arm64';
    api.publishRelease({
      tag: 'v2.0.0',
      assets: [
        // A decoy for another machine, listed first: the pattern must skip it.
        { name: `mytool-${process.platform}-${other}`, body: 'not for this machine' },
        { name: `mytool-darwin-${process.arch}`, body: 'not for this machine' },
        { name: `mytool-${process.platform}-${process.arch}`, body: fs.readFileSync(v2) },
      ],
    });
  }, { timeout: 300_000 });

  after(async () => {
    for (const pid of updaters) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await api?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('a selfUpdating() CLI built as one executable updates itself: the next run is the new executable', async () => {
    const dir = path.join(work, 'cli');
    fs.mkdirSync(dir);
    const tool = path.join(dir, 'mytool');
    fs.copyFileSync(v1, tool);
    fs.chmodSync(tool, 0o755);
    const env = { SEA_API: api.baseUrl, XDG_CACHE_HOME: path.join(work, 'cli-cache') };
    const first = await runTool([tool], env);
    assert.deepEqual(first.answer, { version: '1.0.0', updated: null, checking: true, sea: true });
    const stateDir = path.join(env.XDG_CACHE_HOME, 'overseer', 'self-update');
    await until('the executable to be replaced', () => {
      const name = fs.existsSync(stateDir) ? fs.readdirSync(stateDir).find((entry) => entry.endsWith('.json')) : undefined;
      const state = name === undefined ? {} : JSON.parse(fs.readFileSync(path.join(stateDir, name), 'utf8'));
      if (state.checking) updaters.add(state.checking.pid);
      if (state.lastResult === 'failed' || state.lastResult === 'rejected') throw new Error(`the update failed: ${JSON.stringify(state)}`);
      return state.lastResult === 'updated' && !(state.checking && isAlive(state.checking.pid)) ? true : undefined;
    }, 120_000);
    assert.equal(sha256(tool), sha256(v2), 'the installed executable is the release');
    assert.ok(fs.statSync(tool).mode & 0o100, 'still executable');
    const second = await runTool([tool], { ...env, OVERSEER_ROLE: '' });
    assert.equal(second.answer?.version, '2.0.0');
    assert.deepEqual(second.answer?.updated, { from: '1.0.0', to: '2.0.0' });
    const downloads = api.requests.filter((request) => request.server === 'download' || request.url.includes('/assets/'));
    assert.ok(downloads.length >= 1 && downloads.every((request) => !request.url.includes('darwin')), 'only this platform\'s asset was fetched');
  });

  test('a run() server built as one executable: the master re-runs the executable as its child and upgrades to the new one', async () => {
    const dir = path.join(work, 'server');
    fs.mkdirSync(dir);
    const exe = path.join(dir, 'mytool');
    fs.copyFileSync(v1, exe);
    fs.chmodSync(exe, 0o755);
    const running = await master(exe, { SEA_API: api.baseUrl }, { executable: true, args: ['serve'], cwd: dir });
    const started = running.events.find((event) => event.type === 'master-started');
    assert.equal(started?.type === 'master-started' && started.bundlePath, exe, 'the bundle is the executable');
    const answer = await ask(running.port);
    assert.equal((answer as { sea?: boolean }).sea, true);
    assert.equal(answer.version, '1.0.0');
    assert.notEqual(answer.pid, running.pid, 'a child, not the master, answers');
    const applied = await running.waitFor('upgrade-applied', undefined, 120_000);
    assert.equal(applied.version, '2.0.0', 'the echo-token check ran the new executable and it said 2.0.0');
    await running.waitFor('handoff-completed', (event) => event.reason === 'upgrade', 60_000);
    const upgraded = await ask(running.port);
    assert.equal(upgraded.version, '2.0.0');
    assert.equal(sha256(exe), sha256(v2));
    // Before after() deletes the executables (the helper would stop it later, once the file ends).
    await running.stop();
  });
});
