import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { cleanupCli, cli, runCli, scratch } from '../helpers/cli.ts';
import { after, describe, test } from 'node:test';
import { fixture, root } from '../helpers/master.ts';

after(cleanupCli);


interface Answer {
  pid: number;
  version: string;
  names: string;
  tag?: string;
  other?: string;
  cwd: string;
}

function get(target: { port: number } | { socketPath: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.get({ ...target, host: '127.0.0.1', path: '/', agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(JSON.parse(body) as Answer));
    });
    request.on('error', reject);
  });
}


function writeJson(file: string, value: unknown): string {
  fs.writeFileSync(file, JSON.stringify(value, null, 2));
  return file;
}

describe('overseer run -c: the config file', () => {
  test('two listener groups, tcp and unix (relative to the file), both served by the same child; the file\'s directory is its cwd', async () => {
    const dir = scratch();
    const config = writeJson(path.join(dir, 'overseer.config.json'), {
      listeners: [{ name: 'web', address: '127.0.0.1:0' }, { name: 'admin', address: 'unix:admin.sock' }],
      command: [process.execPath, fixture('ctl-server.mjs')],
      bundle: fixture('ctl-server.mjs'),
      env: { TAG: 'file' },
      terminateTimeout: 5000,
    });
    const run = runCli(['-c', config], root);
    const startedEvent = await run.waitFor('master-started');
    const ready = await run.waitFor('child-ready');
    const addresses = startedEvent.addresses as string[];
    assert.deepEqual(addresses.slice(1), [`unix:${path.join(dir, 'admin.sock')}`]);
    const overTcp = await get({ port: Number(addresses[0]?.split(':').pop()) });
    const overUnix = await get({ socketPath: path.join(dir, 'admin.sock') });
    assert.equal(overTcp.pid, ready.pid);
    assert.equal(overUnix.pid, ready.pid);
    assert.equal(overTcp.names, 'web:admin');
    assert.equal(overTcp.tag, 'file');
    assert.equal(fs.realpathSync(overTcp.cwd), fs.realpathSync(dir));
    run.master.kill('SIGTERM');
    assert.equal(await run.exited, 0);
    assert.equal(fs.existsSync(path.join(dir, 'admin.sock')), false, 'the unix socket file is removed on exit');
  });

  test('flags override the file: --listen replaces its listeners, --env merges over its env, --ready and --cwd win', async () => {
    const dir = scratch();
    const elsewhere = scratch();
    const config = writeJson(path.join(dir, 'overseer.config.json'), {
      listeners: [{ name: 'web', address: '127.0.0.1:0' }],
      command: [process.execPath, fixture('ctl-server.mjs')],
      bundle: fixture('ctl-server.mjs'),
      env: { TAG: 'file', OTHER: 'kept' },
      // Were the flag not to win, the child would never be ready and the master would give up.
      ready: { delay: 600000 },
      readyTimeout: 4000,
    });
    const run = runCli(['-c', config, '--listen', 'api=127.0.0.1:0', '--env', 'TAG=flag', '--ready', 'notify', '--cwd', elsewhere], root);
    const startedEvent = await run.waitFor('master-started');
    await run.waitFor('child-ready');
    const addresses = startedEvent.addresses as string[];
    assert.equal(addresses.length, 1);
    const answer = await get({ port: Number(addresses[0]?.split(':').pop()) });
    assert.equal(answer.names, 'api');
    assert.equal(answer.tag, 'flag');
    assert.equal(answer.other, 'kept');
    assert.equal(fs.realpathSync(answer.cwd), fs.realpathSync(elsewhere));
    run.master.kill('SIGTERM');
    assert.equal(await run.exited, 0);
  });

  test('a bad config file is refused with exit code 2, naming the file and the JSON path of the bad key', () => {
    const dir = scratch();
    const refuse = (content: unknown, name = 'overseer.config.json', extra: string[] = []) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
      const result = spawnSync(process.execPath, [cli, 'run', '-c', file, ...extra], { encoding: 'utf8' });
      assert.equal(result.status, 2, result.stderr);
      assert.ok(result.stderr.includes(file), `names the file: ${result.stderr}`);
      return result.stderr;
    };
    assert.match(refuse({ listeners: [{ address: ':0' }, { name: 'b', address: 'localhost:80' }], command: ['true'] }),
      /: listeners\[1\]\.address "localhost:80" must use an IP literal/);
    assert.match(refuse({ listners: [], command: ['true'] }), /has no option "listners" \(did you mean "listeners"\?\)/);
    assert.match(refuse({ command: ['true'], terminateTimeout: '30s' }), /: terminateTimeout must be a duration in milliseconds .*; got "30s"/);
    assert.match(refuse({ command: ['true'], ready: 'soon' }), /: ready must be "notify" .* or \{ "delay": ms \}; got "soon"/);
    assert.match(refuse({ command: ['true'], fetch: { http: { url: 'ftp://example.com/app' } } }), /: fetch\.http\.url must be an absolute http: or https: URL/);
    assert.match(refuse({ command: ['true'], verify: { sha256: 'yes' } }), /: verify\.sha256 must be "optional" or "required"; got "yes"/);
    assert.match(refuse({ command: ['true'], env: { PORT: 8080 } }), /: env\.PORT must be a string/);
    assert.match(refuse('{\n  "command": ["true"],\n  // a comment\n}'), /is not valid JSON: .*line 3 column 3.*plain JSON, without comments/);
    assert.match(refuse('command = ["true"]\n', 'overseer.toml'), /TOML is not supported: Node\.js has no TOML parser built in .* write the same keys as JSON/);
  });

  test('a bad flag is named, even with a config file', () => {
    const dir = scratch();
    const file = writeJson(path.join(dir, 'overseer.config.json'), { command: ['true'] });
    const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'run', '-c', file, ...args], { encoding: 'utf8' });
    const badSignal = run('--reopen-signal', 'SIGFOO');
    assert.equal(badSignal.status, 2);
    assert.match(badSignal.stderr, /--reopen-signal takes a signal name such as SIGTERM; got "SIGFOO"/);
    assert.match(run('--sha256', 'yes').stderr, /--sha256 must be "optional" or "required"; got "yes"/);
    assert.match(run('--fetch-url', 'not-a-url').stderr, /--fetch-url must be an absolute http: or https: URL/);
    assert.match(run('--fetch', '{"s3":{"bucket":5,"key":"app.mjs"}}').stderr, /--fetch: fetch\.s3\.bucket must be a non-empty string; got 5/);
    assert.match(run('--fetch', '{"gitlab":{}}').stderr, /--fetch: fetch must be an object with one of "http", "file", "s3", "github"/);
    assert.match(run('--fetch', '{oops').stderr, /--fetch takes the JSON of the config file's "fetch"/);
    assert.match(run('--listen', 'localhost:80').stderr, /--listen "localhost:80" must use an IP literal/);
    assert.match(run('--public-key', '@missing.pub').stderr, /--public-key: cannot read the public key file .*missing\.pub/);
  });
});

describe('overseer run: one check of the merged settings names each option by the source that gave it', () => {
  test('the file and the flags each named as written, with no message rewritten', () => {
    const dir = scratch();
    const file = writeJson(path.join(dir, 'overseer.config.json'), {
      command: ['true'],
      listeners: [{ name: 'web', address: ':0' }, 'localhost:81'],
      verify: { publicKey: 'not-a-key' },
      respawn: { minDelay: 5, maxcrashes: 3 },
    });
    const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'run', '-c', file, ...args], { encoding: 'utf8' }).stderr;
    // The file's respawn is checked whole, before the merge.
    assert.match(run(), /overseer\.config\.json: respawn has no option "maxcrashes" \(did you mean "maxCrashes"\?\)/);
    fs.writeFileSync(file, JSON.stringify({ command: ['true'], listeners: [{ name: 'web', address: ':0' }, 'localhost:81'], verify: { publicKey: 'not-a-key' } }));
    assert.match(run(), /overseer\.config\.json: listeners\[1\]\.address "localhost:81" must use an IP literal/);
    // --listen replaces the file's listeners: now the file's public key is the first bad option.
    assert.match(run('--listen', ':0'), /^overseer: \/.*overseer\.config\.json: verify\.publicKey /);
    // --public-key overrides it: the error names the flag, and one line says where help is.
    const flagged = run('--listen', ':0', '--public-key', 'still-not-a-key');
    assert.match(flagged, /^overseer: --public-key .*\nsee `overseer run --help`/);
    assert.doesNotMatch(flagged, /overseer: overseer:/, 'the prefix is printed once');
  });
});
