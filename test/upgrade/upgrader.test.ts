import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { bundleSource, writeBundle, type BundleMode } from '../helpers/bundles.ts';
import { Load, ask } from '../helpers/load.ts';
import { explained, startMaster, tempDir, until, type RunningMaster } from '../helpers/master.ts';
import { createMinisignKey } from '../../support/minisign.ts';
import { startReleaseServer, type ReleaseServer } from '../../support/release-server.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

interface Setup {
  master: RunningMaster;
  server: ReleaseServer;
  bundle: string;
  dir: string;
}

async function setup(options: { env?: Record<string, string>; config?: object; bundle?: string } = {}): Promise<Setup> {
  const dir = tempDir();
  const bundle = options.bundle ?? writeBundle(path.join(dir, 'app.mjs'), '1.0.0');
  const server = await startReleaseServer();
  cleanups.push(() => server.close());
  server.publish('/app.mjs', fs.readFileSync(bundle));
  const master = await startMaster(bundle, {
    cwd: dir,
    env: { APP_FETCH_URL: server.url('/app.mjs'), APP_OPTIONS: JSON.stringify(options.config ?? {}), ...options.env },
  });
  cleanups.push(() => master.stop());
  await master.waitFor('upgrade-skipped', (event) => event.why === 'same-sha256');
  return { master, server, bundle, dir };
}

const gets = (server: ReleaseServer, file: string) => server.requests.filter((request) => request.method === 'GET' && request.path === file).length;

describe('self-upgrade', () => {
  test('a new release is verified, swapped in and served ready-first under load, with zero failed requests', async () => {
    const { master, server, bundle } = await setup();
    const before = await ask(master.port);
    assert.equal(before.version, '1.0.0');
    const load = new Load({ port: master.port, keepAlive: true, concurrency: 6, maxMs: 30_000 });
    server.publish('/app.mjs', bundleSource('2.0.0'));
    const applied = await master.waitFor('upgrade-applied');
    assert.equal(applied.version, '2.0.0');
    assert.equal(applied.restart, true);
    // Where the upgrade's time went, step by step.
    assert.deepEqual(Object.keys(applied.timings).sort(), ['checkMs', 'downloadMs', 'handoffMs', 'pollMs', 'swapMs', 'verifyMs']);
    for (const [step, ms] of Object.entries(applied.timings)) assert.ok(Number.isFinite(ms) && ms >= 0, `${step}: ${ms}`);
    assert.ok(applied.timings.checkMs > 0, 'the echo-token check spawns the staged release: it takes time');
    const handoff = master.events.find((event) => event.type === 'handoff-completed' && event.reason === 'upgrade');
    assert.ok(handoff?.type === 'handoff-completed');
    assert.ok(applied.timings.handoffMs >= handoff.timings.totalMs, `handoffMs ${applied.timings.handoffMs} < the handoff's ${handoff.timings.totalMs}`);
    await until('v2 answering', () => (load.result.answers.some((answer) => answer.version === '2.0.0') ? true : undefined));
    const result = await load.stop();
    assert.deepEqual(result.failures, []);
    const after = await ask(master.port);
    assert.equal(after.version, '2.0.0');
    assert.equal(after.id, applied.sha256);
    assert.match(fs.readFileSync(bundle, 'utf8'), /release 2\.0\.0/);
    assert.match(fs.readFileSync(`${bundle}.previous`, 'utf8'), /release 1\.0\.0/);
    assert.deepEqual(fs.readdirSync(path.dirname(bundle)).filter((name) => name.includes('.overseer-') && !name.endsWith('.overseer-version')), [], 'no temp files left');
  });

  test('a gzip release is inflated before it is checked and swapped', async () => {
    const { master, server } = await setup();
    server.publish('/app.mjs.gz', bundleSource('2.1.0'), { gzip: true });
    await master.stop();
    // Restart the same bundle pointed at the .gz URL.
    const next = await startMaster(path.join(master.process.spawnargs[1] ?? ''), {
      env: { APP_FETCH_URL: server.url('/app.mjs.gz'), APP_OPTIONS: '{}' },
    });
    cleanups.push(() => next.stop());
    const applied = await next.waitFor('upgrade-applied');
    assert.equal(applied.version, '2.1.0');
    assert.equal((await ask(next.port)).version, '2.1.0');
  });

  // [name, mode, the outcome event, its code, what its error says (the fault is the one meant)]
  const faults: Array<[string, BundleMode, string, string, RegExp]> = [
    ['throws on import', 'throw-on-import', 'upgrade-rejected', 'ERR_OVERSEER_CHECK_FAILED', /without printing the token/],
    ['hangs on import', 'hang-on-import', 'upgrade-rejected', 'ERR_OVERSEER_CHECK_FAILED', /no answer within/],
    ['prints no token', 'no-token', 'upgrade-rejected', 'ERR_OVERSEER_CHECK_FAILED', /without printing the token/],
    ['passes the check but crashes in program', 'crash-in-program', 'upgrade-rolled-back', '', /failed in its program/],
    ['never becomes ready', 'never-ready', 'upgrade-rolled-back', '', /not ready within readyTimeout/],
    ['exits before it is ready', 'exits-before-ready', 'upgrade-rolled-back', '', /exited \(code 0\) before it was ready/],
  ];
  for (const [name, mode, outcome, code, says] of faults) {
    test(`a release that ${name} leaves the old child serving, and is not retried`, async () => {
      // debug: the master's own log (each event, each coalesced handoff, each kill) goes into the report.
      const { master, server, bundle } = await setup({ config: { checkTimeout: 1500, readyTimeout: 1500, debug: true } });
      // A failure says what the master did and when, and what the release server saw.
      await explained(master, () => server.log(), async () => {
        const original = fs.readFileSync(bundle, 'utf8');
        const serving = await ask(master.port);
        const load = new Load({ port: master.port, keepAlive: true, concurrency: 4, maxMs: 30_000 });
        server.publish('/app.mjs', bundleSource('2.0.0', mode));
        const event = await master.waitFor(outcome as 'upgrade-rejected');
        if (code) assert.equal(event.code, code);
        assert.match(event.error, says);
        const downloads = gets(server, '/app.mjs');
        // Several more polls: the rejected release is not downloaded again.
        const polls = server.requests.length;
        await until('more polls', () => (server.requests.length >= polls + 4 ? true : undefined));
        assert.equal(gets(server, '/app.mjs'), downloads);
        const result = await load.stop();
        assert.deepEqual(result.failures, []);
        assert.equal((await ask(master.port)).pid, serving.pid, 'the old child still serves');
        assert.equal(fs.readFileSync(bundle, 'utf8'), original, 'the bundle on disk is the old one');
        // A good release after it still lands.
        server.publish('/app.mjs', bundleSource('3.0.0'));
        assert.equal((await master.waitFor('upgrade-applied')).version, '3.0.0');
      });
    });
  }

  test('a release whose sha256 does not match its sidecar is refused', async () => {
    const { master, server, bundle } = await setup({ env: { APP_FETCH_SHA256_URL: '' } });
    await master.stop();
    server.publish('/app.mjs.sha256', `${'0'.repeat(64)}  app.mjs\n`);
    server.publish('/app.mjs', bundleSource('2.0.0'));
    const next = await startMaster(bundle, { env: { APP_FETCH_URL: server.url('/app.mjs'), APP_FETCH_SHA256_URL: server.url('/app.mjs.sha256'), APP_OPTIONS: '{}' } });
    cleanups.push(() => next.stop());
    const rejected = await next.waitFor('upgrade-rejected');
    assert.equal(rejected.code, 'ERR_OVERSEER_CHECKSUM_MISMATCH');
    assert.equal((await ask(next.port)).version, '1.0.0');
  });

  test('signatures: a valid minisign signature passes, a bad or missing one is refused', async () => {
    const key = createMinisignKey();
    const other = createMinisignKey();
    const dir = tempDir();
    const bundle = writeBundle(path.join(dir, 'app.mjs'), '1.0.0');
    const server = await startReleaseServer();
    cleanups.push(() => server.close());
    const v2 = bundleSource('2.0.0');
    server.publish('/app.mjs', v2);
    server.publish('/app.mjs.minisig', other.sign(Buffer.from(v2)));
    const master = await startMaster(bundle, {
      env: {
        APP_FETCH_URL: server.url('/app.mjs'), APP_FETCH_SIGNATURE_URL: server.url('/app.mjs.minisig'),
        APP_OPTIONS: JSON.stringify({ verify: { publicKey: key.publicKeyFile } }),
      },
    });
    cleanups.push(() => master.stop());
    assert.equal((await master.waitFor('upgrade-rejected')).code, 'ERR_OVERSEER_SIGNATURE_INVALID');
    const v3 = bundleSource('3.0.0');
    server.publish('/app.mjs', v3);
    server.publish('/app.mjs.minisig', key.sign(Buffer.from(v3), 'overseer test release 3.0.0'));
    assert.equal((await master.waitFor('upgrade-applied')).version, '3.0.0');
    assert.equal((await ask(master.port)).version, '3.0.0');
  });

  test('a downgrade is refused unless verify.allowDowngrade', async () => {
    const { master, server } = await setup();
    server.publish('/app.mjs', bundleSource('0.9.0'));
    assert.equal((await master.waitFor('upgrade-rejected')).code, 'ERR_OVERSEER_DOWNGRADE');
    assert.equal((await ask(master.port)).version, '1.0.0');
  });

  test('a truncated download or a stalled server is retried with backoff, never swapped', async () => {
    const { master, server, bundle } = await setup({ env: { APP_FETCH_TIMEOUT: '500' } });
    await explained(master, () => server.log(), async () => {
      server.publish('/app.mjs', bundleSource('2.0.0'));
      server.setMode('/app.mjs', 'drop-mid-body');
      const failed = await master.waitFor('fetch-failed');
      assert.ok(failed.retryInMs >= 50);
      server.setMode('/app.mjs', 'stall-mid-body');
      await master.waitFor('fetch-failed', () => master.events.filter((event) => event.type === 'fetch-failed').length >= 3);
      assert.match(fs.readFileSync(bundle, 'utf8'), /release 1\.0\.0/);
      server.setMode('/app.mjs', 'normal');
      assert.equal((await master.waitFor('upgrade-applied')).version, '2.0.0');
    });
  });

  test('noRestartAfterFetch installs the release; the next manual restart runs it', async () => {
    const { master, server } = await setup({ config: { noRestartAfterFetch: true } });
    const serving = await ask(master.port);
    server.publish('/app.mjs', bundleSource('2.0.0'));
    const applied = await master.waitFor('upgrade-applied');
    assert.equal(applied.restart, false);
    assert.equal(applied.timings.handoffMs, 0);
    assert.equal((await ask(master.port)).pid, serving.pid);
    master.process.kill('SIGUSR2');
    await master.waitFor('handoff-completed');
    assert.equal((await ask(master.port)).version, '2.0.0');
  });

  test('a symlinked bundle path: the link target is replaced and the next child runs the new build', async () => {
    const dir = tempDir();
    const target = writeBundle(path.join(dir, 'releases', 'app.mjs'), '1.0.0');
    const link = path.join(dir, 'app.mjs');
    fs.symlinkSync(target, link);
    const { master, server } = await setup({ bundle: link });
    server.publish('/app.mjs', bundleSource('2.0.0'));
    await master.waitFor('upgrade-applied');
    assert.equal((await ask(master.port)).version, '2.0.0');
    assert.ok(fs.lstatSync(link).isSymbolicLink(), 'the link stays a link');
    assert.match(fs.readFileSync(target, 'utf8'), /release 2\.0\.0/);
  });
});

describe('self-updating CLI (noRestart)', () => {
  test('runs once; the upgrade lands for the next run, with progress events', async () => {
    const dir = tempDir();
    const bundle = writeBundle(path.join(dir, 'tool.mjs'), '1.0.0', 'cli');
    const server = await startReleaseServer();
    cleanups.push(() => server.close());
    server.publish('/tool.mjs', bundleSource('2.0.0', 'cli'));
    const env = { APP_FETCH_URL: server.url('/tool.mjs'), APP_OPTIONS: JSON.stringify({ noRestart: true }) };
    const first = await startMaster(bundle, { env, noWait: true });
    assert.deepEqual(await first.exited, { code: 0, signal: null });
    assert.match(first.output.stdout, /cli version 1\.0\.0/);
    assert.ok(first.events.some((event) => event.type === 'upgrade-progress'));
    assert.equal(first.events.find((event) => event.type === 'upgrade-applied')?.type, 'upgrade-applied');
    const second = await startMaster(bundle, { env, noWait: true });
    await second.exited;
    assert.match(second.output.stdout, /cli version 2\.0\.0/);
  });
});
