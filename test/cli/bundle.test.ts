import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { EVENT_LINE_PREFIX } from '../../src/protocol.ts';
import { cleanupCli, cli, scratch } from '../helpers/cli.ts';
import { until } from '../helpers/master.ts';
import { exitCodeOf } from '../helpers/exit.ts';

after(cleanupCli);

/**
 * An app folder with server.py and a release of it in rel/, and a stand-in `python3` (a shell
 * script that idles under node) in a bin/ folder outside the app, put first on PATH.
 */
function setup() {
  const dir = scratch('overseer-bundle-');
  const bin = path.join(dir, 'bin');
  const app = path.join(dir, 'app');
  fs.mkdirSync(bin);
  fs.mkdirSync(path.join(app, 'rel'), { recursive: true });
  const python = path.join(bin, 'python3');
  // It idles, drains (exits 0) on SIGTERM as a real server would, and says it is ready once it can.
  const program = "process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000); require('fs').writeSync(Number(process.env.OVERSEER_READY_FD), 'READY=1\\n')";
  const interpreter = `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} -e "${program}"\n`;
  fs.writeFileSync(python, interpreter, { mode: 0o755 });
  fs.writeFileSync(path.join(app, 'server.py'), 'print("release 1")\n');
  fs.writeFileSync(path.join(app, 'rel', 'server.py'), 'print("release 2")\n');
  const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` };
  const intact = () => {
    assert.equal(fs.readFileSync(python, 'utf8'), interpreter, 'the python3 on PATH is untouched');
    assert.deepEqual(fs.readdirSync(bin), ['python3'], 'nothing written beside it (no python3.previous)');
  };
  return { dir, app, bin, python, env, intact };
}

const FETCH = ['--events', '--fetch-file', 'rel/server.py', '--fetch-interval', '200', '--no-check'];

/** Runs a command that must be refused at once; a master that starts anyway is stopped after 15 s. */
function refused(args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const result = spawnSync(process.execPath, [cli, 'run', ...args], { cwd, env, encoding: 'utf8', timeout: 15_000, killSignal: 'SIGTERM' });
  assert.equal(result.status, 2, `refused at start (exit 2), not run:\n${result.stderr}`);
  return result.stderr;
}

describe('overseer run: the bundle is never a program from PATH or a file outside the app', () => {
  test('without --bundle, a release source and `python3 server.py` is refused; python3 on PATH is never replaced', () => {
    const { app, env, intact } = setup();
    const stderr = refused([...FETCH, '--', 'python3', 'server.py'], app, env);
    assert.match(stderr, /the command "python3" is the program .*\/bin\/python3, found on PATH: releases from --fetch-file would replace it/);
    assert.match(stderr, /--bundle server\.py/, 'the fix names the script');
    intact();
  });

  test('a command outside the working directory, or a link in it that leads out, is refused unless --bundle names it', () => {
    const { app, env, intact, python } = setup();
    assert.match(refused([...FETCH, '--', '../bin/python3', 'server.py'], app, env), /is .*\/bin\/python3, outside the working directory .*or --bundle .*python3 if replacing that file is really meant/);
    fs.symlinkSync(python, path.join(app, 'py'));
    assert.match(refused([...FETCH, '--', './py', 'server.py'], app, env), /outside the working directory/);
    intact();
  });

  test('with --bundle server.py, the start names the bundle, the release replaces server.py and python3 stays', async () => {
    const { app, env, intact } = setup();
    const master = spawn(process.execPath, [cli, 'run', ...FETCH, '--bundle', 'server.py', '--', 'python3', 'server.py'], { cwd: app, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    master.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = exitCodeOf(master, 'overseer run', () => stderr);
    try {
      const seen = (pattern: RegExp) => stderr.split('\n').some((line) => line.startsWith(EVENT_LINE_PREFIX) && pattern.test(line));
      await until('the release to be applied and its child to take over', () => {
        if (master.exitCode !== null) throw new Error(`overseer run exited (${master.exitCode}):\n${stderr}`);
        return (seen(/"type":"upgrade-applied"/) && seen(/"type":"handoff-completed".*"from":\d+/)) || undefined;
      }, 15_000);
      assert.match(stderr, new RegExp(`\\[overseer master\\] releases \\(file\\) replace the bundle ${path.join(app, 'server.py').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\n`));
      assert.equal(fs.readFileSync(path.join(app, 'server.py'), 'utf8'), 'print("release 2")\n');
      intact();
    } finally {
      master.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
  });
});
