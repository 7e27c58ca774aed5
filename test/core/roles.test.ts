import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { ask } from '../helpers/load.ts';
import { fixture, root, startMaster, type RunningMaster } from '../helpers/master.ts';

const masters: RunningMaster[] = [];
after(() => Promise.all(masters.map((master) => master.stop())));

function runNode(args: string[], env: Record<string, string> = {}, input?: string) {
  return spawnSync(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', input, timeout: 20_000 });
}

describe('roles', () => {
  test('the echo-token check prints the token with version and protocol and exits 0 before the program', () => {
    const result = runNode([fixture('cli.mjs')], { OVERSEER_ROLE: 'check:abc123' });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^overseer-check \{"token":"abc123","protocol":1,"version":"1\.2\.3"\}$/m);
    assert.doesNotMatch(result.stdout, /program ran/);
  });

  test('a CLI program runs once in a child and its exit code becomes the master\'s', () => {
    const result = runNode([fixture('cli.mjs')], { APP_EXIT_CODE: '4' });
    assert.equal(result.status, 4, result.stderr);
    const match = /program ran: enabled=true pid=(\d+) version=1\.2\.3/.exec(result.stdout);
    assert.ok(match, result.stdout);
    assert.notEqual(Number(match[1]), result.pid, 'the program ran in a child, not in the master');
  });

  test('where the master cannot run, required:false runs the program in-process with a warning', () => {
    const source = `process.argv.splice(1); await import(${JSON.stringify(fixture('cli.mjs'))});`;
    const result = runNode(['--input-type=module', '-e', source]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /program ran: enabled=false/);
    assert.match(result.stderr, /warning: running the program without a master: there is no entry script/);
  });

  test('required:true throws ERR_OVERSEER_UNSUPPORTED instead', () => {
    const source = `process.argv.splice(1); await import(${JSON.stringify(fixture('cli.mjs'))});`;
    const result = runNode(['--input-type=module', '-e', source], { APP_REQUIRED: 'true' });
    assert.equal(result.status, 9);
    assert.match(result.stdout, /run failed: ERR_OVERSEER_UNSUPPORTED: the master cannot run/);
    assert.doesNotMatch(result.stdout, /program ran/);
  });

  test('invalid config throws before anything binds or forks', () => {
    const source = `import { run } from 'overseer'; try { run({ program() {}, adress: ':1' }); } catch (e) { console.log(e.code, e.message); }`;
    const result = runNode(['--input-type=module', '-e', source]);
    assert.match(result.stdout, /ERR_OVERSEER_INVALID_CONFIG config has no option "adress" \(did you mean "address"\?\)/);
  });

  test('run() twice in one process throws ERR_OVERSEER_ALREADY_RUNNING', () => {
    const source = `import { run } from 'overseer'; process.argv.splice(1); run({ program() {} }); try { run({ program() {} }); } catch (e) { console.log(e.code); }`;
    const result = runNode(['--input-type=module', '-e', source], {});
    assert.match(result.stdout, /ERR_OVERSEER_ALREADY_RUNNING/);
  });

  test('children are forked with the master\'s execArgv: node --import tsx app.ts works', async () => {
    const master = await startMaster(fixture('app.ts'), { execArgv: ['--import', 'tsx'] });
    masters.push(master);
    const first = await ask(master.port);
    master.process.kill('SIGUSR2');
    const done = await master.waitFor('handoff-completed');
    assert.notEqual(done.to, first.pid);
    assert.equal((await ask(master.port)).pid, done.to);
  });
});


