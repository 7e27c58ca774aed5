/**
 * overseer/self-update with real processes: the tool answers at once while its background
 * check installs a release, the next run is the new version; concurrent runs; a killed
 * updater; a read-only install; no network; hostile releases; selfUpdate() in the foreground.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { isAlive, tempDir, until } from '../helpers/master.ts';
import { modulesLoadedBy } from '../helpers/modules.ts';
import { onDone, releaseServer } from '../helpers/ended.ts';
import { root } from '../helpers/master.ts';
import { runTool, toolSource, writeTool } from './tool.ts';
import type { SelfUpdateState } from '../../src/self-update/state-file.ts';

/** Background updaters seen in a state file; any still alive when the file's tests end is killed. */
const updaters = new Set<number>();
onDone(async () => {
  for (const pid of updaters) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
});

interface Install {
  readonly dir: string;
  readonly tool: string;
  readonly cache: string;
  readonly env: Record<string, string>;
  state(): SelfUpdateState;
  stateFile(): string | undefined;
  run(extra?: Record<string, string>, args?: string[]): ReturnType<typeof runTool>;
  /** Waits until no background check is under way (its pid gone) and the state says `result`. */
  settled(result?: SelfUpdateState['lastResult']): Promise<SelfUpdateState>;
}

function install(version: string, env: Record<string, string> = {}): Install {
  const base = tempDir('overseer-self-update-');
  onDone(async () => {
    fs.chmodSync(base, 0o755);
    fs.rmSync(base, { recursive: true, force: true });
  });
  const dir = path.join(base, 'install');
  const cache = path.join(base, 'cache');
  const tool = writeTool(path.join(dir, 'mytool.mjs'), version);
  const all = { XDG_CACHE_HOME: cache, ...env };
  const stateFile = () => {
    const folder = path.join(cache, 'overseer', 'self-update');
    const name = fs.existsSync(folder) ? fs.readdirSync(folder).find((entry) => entry.endsWith('.json')) : undefined;
    return name === undefined ? undefined : path.join(folder, name);
  };
  const state = (): SelfUpdateState => {
    const file = stateFile();
    const read: SelfUpdateState = file === undefined ? {} : JSON.parse(fs.readFileSync(file, 'utf8'));
    if (read.checking) updaters.add(read.checking.pid);
    return read;
  };
  return {
    dir, tool, cache, env: all, state, stateFile,
    run: (extra = {}, args = []) => runTool([process.execPath, tool, ...args], { ...all, ...extra }),
    settled: (result) => until(`the background check to end${result ? ` with ${result}` : ''}`, () => {
      const now = state();
      if (now.checking && isAlive(now.checking.pid)) return undefined;
      if (result !== undefined && now.lastResult !== result) return undefined;
      return now.lastResult === undefined ? undefined : now;
    }, 30_000),
  };
}

const installed = (file: string) => /^\/\/ tool (\S+)/.exec(fs.readFileSync(file, 'utf8'))?.[1];
const bodyGets = (requests: { method: string; path: string }[], file: string) => requests.filter((request) => request.method === 'GET' && request.path === file).length;

describe('self-updating tools (overseer/self-update)', () => {
  test('the tool answers at once while an update installs in the background; the next run is the new version and says so once', async () => {
    const releases = await releaseServer();
    releases.publish('/mytool.mjs', toolSource('2.0.0'), { sha256: true });
    // The release trickles in: the tool must be done long before it is.
    releases.drip('/mytool.mjs', { every: 25, bytes: 32 });
    const it = install('1.0.0', { TOOL_URL: releases.url('/mytool.mjs'), TOOL_SHA256: '1' });
    const first = await it.run();
    assert.equal(first.code, 0);
    assert.deepEqual(first.answer, { version: '1.0.0', updated: null, checking: true });
    assert.equal(first.stderr, '');
    // The tool has exited; its updater is still downloading.
    const during = await until('the background updater', () => it.state().checking);
    assert.ok(isAlive(during.pid), 'the updater outlives the command');
    assert.equal(installed(it.tool), '1.0.0');
    // Meanwhile runs that find no check due start nothing and see a whole file.
    const meanwhile = await it.run({ TOOL_CHECK_EVERY: '3600000' });
    assert.deepEqual(meanwhile.answer, { version: '1.0.0', updated: null, checking: false });

    const after = await it.settled('updated');
    assert.equal(after.found, '2.0.0');
    assert.equal(installed(it.tool), '2.0.0');
    const second = await it.run({ TOOL_CHECK_EVERY: '3600000' });
    assert.deepEqual(second.answer, { version: '2.0.0', updated: { from: '1.0.0', to: '2.0.0' }, checking: false });
    assert.match(second.stderr, /mytool\.mjs was updated from 1\.0\.0 to 2\.0\.0/);
    const third = await it.run({ TOOL_CHECK_EVERY: '3600000' });
    assert.equal(third.answer?.updated, null);
    assert.equal(third.stderr, '');
  });

  test('at most one check per interval: a run within checkEvery of the last check starts none', async () => {
    const releases = await releaseServer();
    releases.publish('/mytool.mjs', toolSource('1.0.0'), { sha256: true });
    const it = install('1.0.0', { TOOL_URL: releases.url('/mytool.mjs'), TOOL_SHA256: '1', TOOL_CHECK_EVERY: '3600000' });
    assert.equal((await it.run()).answer?.checking, true);
    assert.equal((await it.settled()).lastResult, 'up-to-date');
    const heads = releases.requests.length;
    assert.equal((await it.run()).answer?.checking, false);
    assert.equal((await it.run()).answer?.checking, false);
    assert.equal(releases.requests.length, heads, 'no request within the interval');
  });

  test('two invocations at once: one download, and every run in between sees a whole file', async () => {
    const releases = await releaseServer();
    releases.publish('/mytool.mjs', toolSource('2.0.0'), { sha256: true });
    releases.drip('/mytool.mjs', { every: 25, bytes: 16 });
    const it = install('1.0.0', { TOOL_URL: releases.url('/mytool.mjs'), TOOL_SHA256: '1' });
    const [a, b] = await Promise.all([it.run(), it.run()]);
    assert.equal(a.answer?.version, '1.0.0');
    assert.equal(b.answer?.version, '1.0.0');
    // Runs while the download goes on, each a complete version.
    while (it.state().checking !== undefined) {
      const run = await it.run({ TOOL_CHECK_EVERY: '3600000' });
      assert.equal(run.code, 0, run.stderr);
      assert.ok(['1.0.0', '2.0.0'].includes(run.answer?.version ?? ''), `a whole tool answered: ${run.stdout}`);
    }
    await it.settled('updated');
    assert.equal(installed(it.tool), '2.0.0');
    assert.equal(bodyGets(releases.requests, '/mytool.mjs'), 1, 'the release was downloaded once');
    assert.deepEqual(fs.readdirSync(it.dir).sort(), ['mytool.mjs', 'mytool.mjs.overseer-version', 'mytool.mjs.previous']);
  });

  test('a background updater killed mid-download leaves the install as it was; a later check completes it', async () => {
    const releases = await releaseServer();
    releases.publish('/mytool.mjs', toolSource('2.0.0'), { sha256: true });
    releases.drip('/mytool.mjs', { every: 50, bytes: 16 });
    const it = install('1.0.0', { TOOL_URL: releases.url('/mytool.mjs'), TOOL_SHA256: '1' });
    const before = fs.readFileSync(it.tool);
    await it.run();
    await releases.waitForRequest((request) => request.method === 'GET' && request.path === '/mytool.mjs', 20_000);
    // The staged temp file beside the tool shows bytes are being written.
    await until('the staged release', () => fs.readdirSync(it.dir).find((name) => name !== 'mytool.mjs') ?? undefined);
    const { pid } = await until('the updater pid', () => it.state().checking);
    process.kill(pid, 'SIGKILL');
    await until('the updater to die', () => (isAlive(pid) ? undefined : true));
    assert.deepEqual(fs.readFileSync(it.tool), before, 'the installed tool is untouched');
    assert.equal((await it.run({ TOOL_CHECK_EVERY: '3600000' })).answer?.version, '1.0.0');

    releases.setMode('/mytool.mjs', 'normal');
    // Checks find the dead updater's lock until it goes stale (5 s without a refresh), then one
    // installs. Nobody refreshes it any more: dated back rather than waited out.
    const lock = `${it.stateFile() ?? ''}.lock`;
    assert.ok(fs.existsSync(lock), `the killed updater left its lock ${lock}`);
    const past = new Date(Date.now() - 60_000);
    fs.utimesSync(lock, past, past);
    await until('a check after the killed one to install', async () => {
      const checking = it.state().checking;
      const idle = checking === undefined || !isAlive(checking.pid);
      if (installed(it.tool) === '2.0.0' && idle) return true;
      // The killed updater never cleared its entry: a dead pid counts as idle.
      if (idle) await it.run();
      return undefined;
    }, 60_000);
    // A check started while the dead updater's lock was still fresh may end after the one that
    // installed and write its own lastResult over "updated"; the update itself stays recorded.
    await until('the update recorded', () => {
      const state = it.state();
      const busy = state.checking !== undefined && isAlive(state.checking.pid);
      return !busy && state.updated?.to === '2.0.0' ? true : undefined;
    }, 60_000);
    assert.deepEqual(fs.readdirSync(it.dir).sort(), ['mytool.mjs', 'mytool.mjs.overseer-version', 'mytool.mjs.previous'], 'the killed download left nothing behind');
  });

  test('a read-only install: the tool runs, the check downloads nothing and says once why it cannot install and how to fix it', async (t) => {
    // Root writes anywhere, so there the tool runs as nobody, which must be able to run this Node
    // (CI's Node 22 and 24 live under root's cache, out of nobody's reach).
    if (process.getuid?.() === 0 && spawnSync(process.execPath, ['--version'], { uid: 65534, gid: 65534 }).error) {
      t.skip(`running as root, and user nobody cannot run ${process.execPath}: a read-only install cannot be made here`);
      return;
    }
    const releases = await releaseServer();
    releases.publish('/mytool.mjs', toolSource('2.0.0'), { sha256: true });
    const it = install('1.0.0', { TOOL_URL: releases.url('/mytool.mjs'), TOOL_SHA256: '1' });
    // Root writes anywhere: there the tool runs as nobody, in a cache it owns; otherwise the install is made read-only.
    const asRoot = process.getuid?.() === 0;
    const user = asRoot ? { uid: 65534, gid: 65534 } : {};
    fs.mkdirSync(it.cache, { recursive: true });
    if (asRoot) {
      fs.chownSync(it.cache, 65534, 65534);
      fs.chmodSync(path.dirname(it.dir), 0o755);
    } else {
      fs.chmodSync(it.dir, 0o555);
    }
    // Writable again before the cleanup removes it.
    onDone(async () => fs.chmodSync(it.dir, 0o755));
    const run = (extra: Record<string, string> = {}) => runTool([process.execPath, it.tool], { ...it.env, ...extra }, user);
    const first = await run();
    assert.deepEqual(first.answer, { version: '1.0.0', updated: null, checking: true });
    await it.settled('not-writable');
    assert.equal(bodyGets(releases.requests, '/mytool.mjs'), 0, 'nothing was downloaded');
    assert.deepEqual(fs.readdirSync(it.dir), ['mytool.mjs'], 'nothing was written beside the install');
    const second = await run({ TOOL_CHECK_EVERY: '3600000' });
    assert.equal(second.answer?.version, '1.0.0');
    assert.match(second.stderr, /mytool\.mjs \(a new build\) is available, but mytool\.mjs cannot update itself: \S+ is not writable.*reinstall it in a prefix you own/s);
    const third = await run({ TOOL_CHECK_EVERY: '3600000' });
    assert.equal(third.stderr, '', 'told once per interval');
  });

  test('no network: the check fails quietly and is tried again at the next interval', async () => {
    const closed = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const it = install('1.0.0', { TOOL_URL: `http://127.0.0.1:${closed}/mytool.mjs`, TOOL_CHECK_EVERY: '3600000' });
    const first = await it.run();
    assert.equal(first.answer?.checking, true);
    const after = await it.settled('failed');
    assert.match(after.lastError ?? '', /ECONNREFUSED|connect/i);
    const quiet = await it.run();
    assert.equal(quiet.stderr, '');
    assert.equal(quiet.answer?.checking, false, 'not again within the interval');
    const next = await it.run({ TOOL_CHECK_EVERY: '0' });
    assert.equal(next.answer?.checking, true, 'tried again once the interval passed');
    assert.equal(next.stderr, '');
    await it.settled('failed');
    assert.equal(installed(it.tool), '1.0.0');
  });

  test('hostile releases are refused by the same pipeline as run(): a wrong checksum, a file that is no tool, a downgrade', async () => {
    const releases = await releaseServer();
    const it = install('1.0.0', { TOOL_URL: releases.url('/mytool.mjs'), TOOL_SHA256: '1' });
    const cases: Array<[string, () => void, RegExp]> = [
      ['checksum', () => {
        releases.publish('/mytool.mjs', toolSource('2.0.0'), { sha256: false });
        releases.publish('/mytool.mjs.sha256', `${'0'.repeat(64)}  mytool.mjs\n`);
      }, /ERR_OVERSEER_CHECKSUM_MISMATCH/],
      ['no token', () => releases.publish('/mytool.mjs', toolSource('3.0.0', 'no-token'), { sha256: true }), /ERR_OVERSEER_CHECK_FAILED/],
      ['downgrade', () => releases.publish('/mytool.mjs', toolSource('0.9.0'), { sha256: true }), /ERR_OVERSEER_DOWNGRADE/],
    ];
    for (const [what, publish, code] of cases) {
      publish();
      await it.run();
      const after = await it.settled('rejected');
      assert.match(after.problem?.message ?? '', code, what);
      assert.equal(installed(it.tool), '1.0.0', what);
      const told = await it.run({ TOOL_CHECK_EVERY: '3600000' });
      assert.match(told.stderr, /refused an update/, what);
      // The next case must not read this one's outcome.
      fs.rmSync(it.stateFile()!);
    }
    assert.deepEqual(fs.readdirSync(it.dir).sort(), ['mytool.mjs']);
  });

  test('a verify.publicKey that does not parse is told by the next run, and nothing is installed', async () => {
    const releases = await releaseServer();
    releases.publish('/mytool.mjs', toolSource('2.0.0'), { sha256: true });
    const it = install('1.0.0', { TOOL_URL: releases.url('/mytool.mjs'), TOOL_VERIFY: JSON.stringify({ publicKey: 'not a key' }) });
    await it.run();
    await it.settled('failed');
    const next = await it.run({ TOOL_CHECK_EVERY: '3600000' });
    assert.match(next.stderr, /mytool\.mjs cannot check for updates: .*verify\.publicKey/);
    assert.equal(installed(it.tool), '1.0.0');
  });

  test('selfUpdate() updates in the foreground with progress events, and the next run says so', async () => {
    const releases = await releaseServer();
    releases.publish('/mytool.mjs', toolSource('2.0.0') + `// ${'x'.repeat(64 * 1024)}\n`, { sha256: true });
    const it = install('1.0.0', { TOOL_URL: releases.url('/mytool.mjs'), TOOL_SHA256: '1', TOOL_CHECK_EVERY: '3600000' });
    // A first run claims the interval's check; let it end first.
    await it.run();
    await it.settled('updated');
    fs.writeFileSync(it.tool, toolSource('1.0.0'));
    fs.rmSync(path.join(it.dir, 'mytool.mjs.overseer-version'));
    // Forget that update; the interval's check stays claimed (the next test runs selfUpdate() with one due).
    const { updated: _, ...state } = JSON.parse(fs.readFileSync(it.stateFile()!, 'utf8')) as SelfUpdateState;
    fs.writeFileSync(it.stateFile()!, JSON.stringify({ ...state, lastCheck: Date.now() }));
    const update = await it.run({ TOOL_CHECK_EVERY: '3600000' }, ['self-update']);
    assert.equal(update.code, 0, update.stderr);
    const progress = update.stdout.split('\n').filter((line) => line.startsWith('progress ')).map((line) => line.split(' ').map(Number));
    assert.ok(progress.length >= 1, update.stdout);
    const size = fs.statSync(it.tool).size;
    assert.deepEqual(progress.at(-1)?.slice(1), [size, size], 'the last progress event is the whole release, with its total');
    assert.match(update.stdout, /result \{"updated":true,"from":"1\.0\.0","to":"2\.0\.0"\}/);
    assert.equal(installed(it.tool), '2.0.0');
    const next = await it.run({ TOOL_CHECK_EVERY: '3600000' });
    assert.deepEqual(next.answer?.updated, { from: '1.0.0', to: '2.0.0' });
    const again = await it.run({ TOOL_CHECK_EVERY: '3600000' }, ['self-update']);
    assert.match(again.stdout, /result \{"updated":false,"reason":"up-to-date"\}/);
  });

  test('selfUpdate() with a check due starts no background updater beside it: it installs, says so, and claims the interval', async () => {
    const releases = await releaseServer();
    releases.publish('/mytool.mjs', toolSource('2.0.0'), { sha256: true });
    // No state file: a check is due, and a plain run would start the background updater.
    const it = install('1.0.0', { TOOL_URL: releases.url('/mytool.mjs'), TOOL_SHA256: '1', TOOL_CHECK_EVERY: '3600000' });
    const started = Date.now();
    const update = await it.run({}, ['self-update']);
    assert.equal(update.code, 0, update.stderr);
    // Once spawned, a background updater that took the lock first installed the release and the
    // foreground, finding nothing newer, said up-to-date.
    assert.doesNotMatch(update.stdout, /spawned the background updater/);
    assert.match(update.stdout, /result \{"updated":true,"from":"1\.0\.0","to":"2\.0\.0"\}/);
    assert.equal(installed(it.tool), '2.0.0');
    assert.equal(bodyGets(releases.requests, '/mytool.mjs'), 1, 'downloaded once');
    const state = it.state();
    assert.ok((state.lastCheck ?? 0) >= started, `the interval's check is claimed: ${JSON.stringify(state)}`);
    const next = await it.run();
    assert.deepEqual(next.answer, { version: '2.0.0', updated: { from: '1.0.0', to: '2.0.0' }, checking: false });
    assert.doesNotMatch(next.stdout, /spawned the background updater/);
  });

  test('the tool answers the echo-token check of an older master (run() under noRestart) and of its own updater', async () => {
    const it = install('1.0.0');
    const answer = await runTool([process.execPath, it.tool], { OVERSEER_ROLE: 'check:abc123' });
    assert.match(answer.stdout, /overseer-check \{"token":"abc123","protocol":1,"version":"1\.0\.0"\}/);
    assert.equal(answer.answer, undefined, 'the program did not run');
  });

  test('bad options are refused with the option named', async () => {
    const { selfUpdating } = await import('../../src/self-update/index.ts');
    await assert.rejects(() => selfUpdating({ version: '1.0.0', program() {}, checkEvry: 5 } as never), /options has no option "checkEvry" \(did you mean "checkEvery"\?\)/);
    await assert.rejects(() => selfUpdating({ version: '1.0.0', program() {}, checkEvery: -1 }), /options\.checkEvery/);
    await assert.rejects(() => selfUpdating({ version: '1.0.0' } as never), /options\.program/);
    await assert.rejects(() => selfUpdating({ version: '1.0.0', program() {}, constructor: 1 } as never), /no option "constructor"/);
  });

  test('importing overseer/self-update loads none of the updater (no fetcher, lock, semver or upgrade pipeline)', async () => {
    const loaded = await modulesLoadedBy(path.join(root, 'dist/src/self-update/index.js'));
    const ours = loaded.filter((url) => url.includes('/dist/') || url.includes('node_modules'));
    for (const heavy of ['upgrader', 'updater', 'proper-lockfile', 'semver', 'undici', 'fetchers', 'minisign', 'core/config', 'src/options', 'src/errors', 'events']) {
      assert.ok(!ours.some((url) => url.includes(heavy)), `${heavy} is not loaded: ${ours.join(', ')}`);
    }
  });
});
