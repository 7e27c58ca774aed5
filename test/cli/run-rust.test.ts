import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { cleanupCli, runCli, scratch } from '../helpers/cli.ts';
import { Load } from '../helpers/load.ts';
import { fixture } from '../helpers/master.ts';

const hasRustc = spawnSync('rustc', ['--version']).status === 0;
after(cleanupCli);

test('a Rust server on TcpListener::from_raw_fd(3) (std only) hands off under load and stops with code 0', { skip: !hasRustc && 'rustc is not installed' }, async () => {
  const server = path.join(scratch(), 'fd-server');
  const built = spawnSync('rustc', ['--edition', '2021', '-o', server, fixture('fd-server.rs')], { encoding: 'utf8' });
  assert.equal(built.status, 0, built.stderr);
  const run = runCli(['--listen', '127.0.0.1:0', '--terminate-timeout', '10000', '--', server]);
  const started = await run.waitFor('master-started');
  const port = Number(String((started.addresses as string[])[0]).split(':').pop());
  await run.waitFor('child-ready', 1, 20_000);
  const load = new Load({ port, keepAlive: false, concurrency: 4, maxMs: 60_000 });
  for (let round = 1; round <= 3; round++) {
    run.master.kill('SIGUSR2');
    await run.waitFor('handoff-completed', round, 20_000);
  }
  const result = await load.stop();
  assert.deepEqual(result.failures, []);
  assert.ok(new Set(result.answers.map((answer) => answer.pid)).size >= 3);
  run.master.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});
