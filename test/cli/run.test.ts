import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { Load, ask } from '../helpers/load.ts';
import { fixture, root, until } from '../helpers/master.ts';
import { exitCodeOf } from '../helpers/exit.ts';

const cli = `${root}/dist/src/cli/main.js`;
const hasPython = spawnSync('python3', ['--version']).status === 0;
const started: ChildProcess[] = [];
after(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

interface Cli {
  process: ChildProcess;
  port: number;
  stderr: () => string;
  events: (type: string) => Array<Record<string, unknown>>;
  exited: PromiseLike<number | null>;
}

/** Starts `overseer run --debug …` and follows its lifecycle from the debug lines. */
async function runCli(args: string[], env: Record<string, string> = {}): Promise<Cli> {
  const child = spawn(process.execPath, [cli, 'run', '--debug', ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout?.resume();
  const exited = exitCodeOf(child, 'overseer run', () => stderr);
  const events = (type: string) => [...stderr.matchAll(new RegExp(`\\[overseer master\\] ${type} (\\{.*\\})`, 'g'))].map((match) => JSON.parse(match[1] ?? '{}') as Record<string, unknown>);
  const port = await until('the master to start', () => {
    const address = (events('master-started')[0]?.addresses as string[] | undefined)?.[0];
    if (child.exitCode !== null) throw new Error(`overseer exited: ${stderr}`);
    return address ? Number(address.split(':').pop()) : undefined;
  });
  return { process: child, port, stderr: () => stderr, events, exited };
}

describe('overseer run: any executable, sockets on fd 3', () => {
  test('a Python server built on socket.fromfd(3) serves, hands off ready-first under load, and stops gracefully', { skip: !hasPython && 'python3 is not installed' }, async () => {
    const run = await runCli(['--listen', 'web=127.0.0.1:0', '--', 'python3', fixture('fd-server.py')]);
    await until('the first child ready', () => run.events('child-ready')[0]);
    const first = (await ask(run.port)) as { pid: number; names?: string };
    assert.equal(first.pid, run.events('child-ready')[0]?.pid, 'LISTEN_PID and the answering pid are the child');
    const load = new Load({ port: run.port, keepAlive: false, concurrency: 4, maxMs: 30_000 });
    for (let round = 1; round <= 3; round++) {
      run.process.kill('SIGUSR2');
      await until(`handoff ${round}`, () => (run.events('handoff-completed').length >= round ? true : undefined), 15_000)
        .catch((error: Error) => Promise.reject(new Error(`${error.message}\n${run.stderr()}`)));
    }
    const result = await load.stop();
    assert.deepEqual(result.failures, []);
    assert.ok(new Set(result.answers.map((answer) => answer.pid)).size >= 3);
    run.process.kill('SIGTERM');
    assert.equal(await run.exited, 0);
  });

  test('a plain Node app on server.listen({ fd: 3 }), ready after a delay; its exit code passes through', async () => {
    const run = await runCli(['--listen', '127.0.0.1:0', '--ready-delay', '200', '--', process.execPath, fixture('fd-server.mjs')], { EXIT_CODE: '4' });
    await until('the first child ready', () => run.events('child-ready')[0]);
    const answer = (await ask(run.port)) as unknown as { names: string };
    assert.equal(answer.names, 'listen0');
    run.process.kill('SIGUSR2');
    await until('the handoff', () => run.events('handoff-completed')[0], 15_000);
    await ask(run.port, '127.0.0.1', '/exit').catch(() => undefined);
    assert.equal(await run.exited, 4);
  });

  test('bad usage is refused with a message and exit code 2', () => {
    const noCommand = spawnSync(process.execPath, [cli, 'run', '--listen', ':0'], { encoding: 'utf8' });
    assert.equal(noCommand.status, 2);
    assert.match(noCommand.stderr, /no command: put it after --/);
    const badAddress = spawnSync(process.execPath, [cli, 'run', '--listen', 'localhost:80', '--', 'true'], { encoding: 'utf8' });
    assert.equal(badAddress.status, 2);
    assert.match(badAddress.stderr, /"localhost:80" must use an IP literal/);
    const badDelay = spawnSync(process.execPath, [cli, 'run', '--ready-delay', 'soon', '--', 'true'], { encoding: 'utf8' });
    assert.match(badDelay.stderr, /--ready-delay takes a whole number of milliseconds; got "soon"/);
    const unknown = spawnSync(process.execPath, [cli, 'run', '--lisen', ':0', '--', 'true'], { encoding: 'utf8' });
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /--lisen/);
  });
});
