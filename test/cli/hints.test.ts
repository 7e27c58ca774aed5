/**
 * What a new user reads when something is wrong: the advice must fit the case and work.
 * Did-you-mean for flags, one-line usage errors, --version, a trailing comma pointed at, port
 * numbers in the config file, the echo-check advice of the exec launcher, the hard-link hint,
 * and --allow-insecure-http.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanupCli, cli, scratch } from '../helpers/cli.ts';
import { root } from '../helpers/master.ts';
import { loadRunSettings, type RunSettings } from '../../src/cli/run-settings.ts';
import { packageVersion } from '../../src/cli/version.ts';
import { ExecLauncher } from '../../src/core/launch/exec.ts';
import { NodeLauncher } from '../../src/core/launch/node.ts';
import { createLog } from '../../src/events.ts';
import { extractTar } from '../../src/upgrade/tar.ts';
import { tar } from '../upgrade/tar-archive.ts';

after(cleanupCli);

const overseer = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
const version = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;

describe('the command line', () => {
  test('an unknown flag names the nearest one (run and ctl), and an unknown command too', () => {
    const run = overseer('run', '--listn', ':0', '--', 'true');
    assert.equal(run.status, 2);
    assert.match(run.stderr, /^overseer: unknown option --listn \(did you mean --listen\?\)\n/);
    assert.match(overseer('run', '--fetch-url=http://127.0.0.1/x', '--alow-downgrade', '--', 'true').stderr, /unknown option --alow-downgrade \(did you mean --allow-downgrade\?\)/);
    assert.match(overseer('run', '--zzz', '--', 'true').stderr, /^overseer: unknown option --zzz\n/);
    assert.match(overseer('ctl', 'status', '--jsn').stderr, /unknown option --jsn \(did you mean --json\?\)/);
    const command = overseer('rum');
    assert.equal(command.status, 2);
    assert.match(command.stderr, /unknown command "rum" \(did you mean run\?\)/);
  });

  test('a usage error is the error and one line on where help is, not the whole usage', () => {
    for (const args of [['run', '--ready-delay', 'soon', '--', 'true'], ['run', '--listen', ':0'], ['run', '--lisen', ':0'], ['ctl', 'bogus'], ['bogus']]) {
      const result = overseer(...args);
      assert.equal(result.status, 2, args.join(' '));
      const lines = result.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 2, `${args.join(' ')}:\n${result.stderr}`);
      assert.match(lines[0] ?? '', /^overseer: /);
      assert.match(lines[1] ?? '', /^see `overseer( run| ctl)? --help`/);
      assert.doesNotMatch(result.stderr, /usage:/);
    }
    assert.match(overseer('run', '--help').stdout, /usage: overseer run/);
  });

  test('--version and -v print the package version', () => {
    for (const flag of ['--version', '-v']) {
      const result = overseer(flag);
      assert.equal(result.status, 0);
      assert.equal(result.stdout, `${version}\n`);
    }
    assert.match(overseer('--help').stdout, /-v, --version/);
  });

  test('the version is the nearest package.json named overseer: an app\'s own package.json above is skipped', () => {
    assert.equal(packageVersion(path.join(root, 'dist/src/cli')), version);
    const app = scratch();
    const installed = path.join(app, 'node_modules/overseer');
    fs.mkdirSync(path.join(installed, 'dist/src/cli'), { recursive: true });
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'my-app', version: '9.9.9' }));
    fs.writeFileSync(path.join(installed, 'package.json'), JSON.stringify({ name: 'overseer', version: '1.2.3' }));
    assert.equal(packageVersion(path.join(installed, 'dist/src/cli')), '1.2.3');
    fs.rmSync(path.join(installed, 'package.json'));
    assert.equal(packageVersion(path.join(installed, 'dist/src/cli')), 'unknown');
  });
});

describe('the config file', () => {
  const settingsOf = (data: string | object, ...flags: string[]) => {
    const dir = scratch();
    fs.writeFileSync(path.join(dir, 'server.sh'), '#!/bin/sh\n');
    const file = path.join(dir, 'overseer.config.json');
    fs.writeFileSync(file, typeof data === 'string' ? data : JSON.stringify(data));
    return { dir, file, load: () => loadRunSettings(['-c', file, ...flags]) };
  };

  test('a trailing comma is pointed at: line and column of the comma', async () => {
    const { file, load } = settingsOf('{\n  "command": ["sh", "server.sh"],\n  "listeners": [":0"],\n}\n');
    await assert.rejects(load(), (error: Error) => {
      assert.match(error.message, new RegExp(`${file} is not valid JSON: a trailing comma at line 3 column 22; remove it`));
      return true;
    });
    const cli = overseer('run', '-c', file);
    assert.equal(cli.status, 2);
    assert.match(cli.stderr, /a trailing comma at line 3 column 22/);
  });

  test('listeners may be port numbers, bare or as an address', async () => {
    const { load } = settingsOf({ command: ['sh', 'server.sh'], listeners: [3080, { name: 'admin', address: 3081 }, '127.0.0.1:0'] });
    const settings = (await load()) as RunSettings;
    assert.deepEqual(settings.listeners, [{ name: 'listen0', address: ':3080' }, { name: 'admin', address: ':3081' }, { name: 'listen2', address: '127.0.0.1:0' }]);
    assert.deepEqual(settings.config.addresses.map((address) => address.kind === 'tcp' && address.port), [3080, 3081, 0]);
  });

  test('--allow-insecure-http lets --fetch-url (or the file\'s fetch.http) use plain http to another machine', async () => {
    const remote = 'http://192.0.2.7/app.sh';
    const url = (...flags: string[]) => settingsOf({ command: ['sh', 'server.sh'], bundle: 'server.sh' }, '--fetch-url', remote, ...flags).load();
    await assert.rejects(url(), /HttpFetcher|http:/);
    const settings = (await url('--allow-insecure-http')) as RunSettings;
    assert.equal(settings.fetchSource, 'http');
    assert.ok(settings.config.fetcher);
    const file = settingsOf({ command: ['sh', 'server.sh'], bundle: 'server.sh', fetch: { http: { url: remote } } }, '--allow-insecure-http');
    assert.equal(((await file.load()) as RunSettings).fetchSource, 'http');
    const keyed = settingsOf({ command: ['sh', 'server.sh'], bundle: 'server.sh', fetch: { http: { url: remote, allowInsecureHttp: true } } });
    assert.equal(((await keyed.load()) as RunSettings).fetchSource, 'http');
    await assert.rejects(settingsOf({ command: ['sh', 'server.sh'] }, '--allow-insecure-http').load(), /--allow-insecure-http applies to an http release source .* there is none/);
    assert.match(overseer('run', '--help').stdout, /--allow-insecure-http/);
  });
});

describe('advice that fits', () => {
  test('a non-Node release under the exec launcher gets the exec check protocol as advice, and following it passes', async () => {
    const dir = scratch();
    const bundle = path.join(dir, 'server.sh');
    fs.writeFileSync(bundle, '#!/bin/sh\necho serving\n', { mode: 0o755 });
    const staged = path.join(dir, 'staged.sh');
    fs.writeFileSync(staged, '#!/bin/sh\necho "a new release that knows nothing of overseer"\n', { mode: 0o755 });
    const launcher = new ExecLauncher({ command: 'sh', args: ['server.sh'], cwd: dir, readiness: { kind: 'notify' }, bundlePath: bundle });
    await assert.rejects(launcher.check(staged, 5_000), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_OVERSEER_CHECK_FAILED');
      assert.match(error.message, new RegExp(`the check ran "sh ${staged}" with the variable OVERSEER_BIN_CHECK set: the program must then print its value on a line of its own and exit 0`));
      assert.match(error.message, /--no-check/);
      assert.match(error.message, new RegExp(`--bundle \\(now ${bundle}\\)`));
      assert.doesNotMatch(error.message, /must call run\(\)/);
      return true;
    });
    // A server that ignores the variable never exits: the timeout gives the same advice.
    fs.writeFileSync(staged, '#!/bin/sh\nexec sleep 30\n');
    await assert.rejects(launcher.check(staged, 300), /no answer within 300 ms; the check ran .* OVERSEER_BIN_CHECK .*--no-check/);
    // The advice works: a release that prints $OVERSEER_BIN_CHECK passes.
    fs.writeFileSync(staged, '#!/bin/sh\nif [ -n "$OVERSEER_BIN_CHECK" ]; then echo "$OVERSEER_BIN_CHECK"; exit 0; fi\necho serving\n');
    assert.equal((await launcher.check(staged, 5_000)).version, null);
  });

  test('a Node release still hears that its entry must call run()', async () => {
    const dir = scratch();
    const staged = path.join(dir, 'staged.mjs');
    fs.writeFileSync(staged, 'console.log("no overseer here")\n');
    const launcher = new NodeLauncher(createLog({ debug: false, noWarn: true }, 'master'));
    await assert.rejects(launcher.check(staged, 5_000), /without printing the token; its entry must call run\(\) from overseer/);
    fs.writeFileSync(staged, 'setTimeout(() => {}, 30_000);\n');
    await assert.rejects(launcher.check(staged, 300), /no answer within 300 ms; its entry must call run\(\) from overseer, before doing anything slow/);
  });

  test('a hard link in a release archive is refused with the tar flag that avoids it', async () => {
    const dir = scratch();
    const archive = path.join(dir, 'release.tar');
    fs.writeFileSync(archive, tar([{ name: 'f', body: 'x' }, { name: 'g', type: '1', link: 'f' }]));
    fs.mkdirSync(path.join(dir, 'out'));
    await assert.rejects(extractTar(archive, path.join(dir, 'out')), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_OVERSEER_UNSAFE_ARCHIVE');
      assert.match(error.message, /"g" is a hard link, which a release folder may not hold; pack the folder with GNU tar's --hard-dereference/);
      return true;
    });
  });
});
