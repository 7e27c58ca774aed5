import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { appFolder, cleanupCli, getJson, overseer, runCli } from '../helpers/cli.ts';
import { after, describe, test } from 'node:test';
import { fixture, isAlive, until } from '../helpers/master.ts';

after(cleanupCli);

interface Answer {
  pid: number;
  version: string;
}

const get = (port: number) => getJson<Answer>(port);


/** A copy of the fd-server fixture in its own directory, run as `node app.mjs` with a config that names it the bundle. */
function setUp(extra: Record<string, unknown> = {}) {
  const { dir, config } = appFolder('overseer-ctl-', fs.readFileSync(fixture('ctl-server.mjs'), 'utf8'), (folder) => ({
    env: { CTL_LOG: path.join(folder, 'signals.log') },
    control: 'ctl.sock',
    pidFile: 'master.pid',
    terminateTimeout: 5000,
    ...extra,
  }));
  return { dir, config, socket: path.join(dir, 'ctl.sock'), pidFile: path.join(dir, 'master.pid') };
}

/** Exited, or a zombie that whoever adopted it has not reaped yet. */
function isGone(pid: number): boolean {
  if (!isAlive(pid)) return true;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function rawRequest(socketPath: string, line: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath, () => socket.write(line));
    let data = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (data += chunk));
    socket.on('end', () => resolve(JSON.parse(data) as Record<string, unknown>));
    socket.on('error', reject);
  });
}

describe('overseer ctl: the control socket of overseer run', () => {
  test('status, reopen, restart, upgrade and stop reach the master; a second master is refused', async () => {
    const { dir, config, socket, pidFile } = setUp({
      fetch: { file: { path: 'release/app.mjs', interval: 600000 } },
      minFetchInterval: 100,
      check: false,
    });
    const run = runCli(['-c', config]);
    const [address] = (await run.waitFor('master-started')).addresses as string[];
    const port = Number(address?.split(':').pop());
    const first = await run.waitFor('child-ready');
    await until('the control socket', () => (fs.existsSync(socket) ? true : undefined));

    assert.equal(fs.statSync(socket).mode & 0o777, 0o600, 'only the owner may open the control socket');
    assert.equal(fs.readFileSync(pidFile, 'utf8').trim(), String(run.master.pid));

    const status = await overseer('ctl', 'status', '-c', config);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`master +pid ${run.master.pid}, up \\d+s`));
    assert.match(status.stdout, new RegExp(`pid ${first.pid} +generation 1 +ready +serving`));
    assert.match(status.stdout, /listen +web=127\.0\.0\.1:\d+/);
    assert.match(status.stdout, /handoff +none yet/);
    const json = await overseer('ctl', 'status', '--json', '--control', socket);
    const raw = JSON.parse(json.stdout) as { pid: number; children: Array<{ pid: number; serving: boolean }>; names: string[]; sha256: string };
    assert.equal(raw.pid, run.master.pid);
    assert.deepEqual(raw.children.map((child) => [child.pid, child.serving]), [[first.pid, true]]);
    assert.deepEqual(raw.names, ['web']);
    assert.match(raw.sha256, /^[0-9a-f]{64}$/);

    const reopen = await overseer('ctl', 'reopen', '-c', config);
    assert.equal(reopen.code, 0, reopen.stderr);
    assert.match(reopen.stdout, new RegExp(`sent SIGUSR1 to child ${first.pid}`));
    await until('the child to log SIGUSR1', () => (fs.readFileSync(path.join(dir, 'signals.log'), { encoding: 'utf8', flag: 'a+' }).includes(`SIGUSR1 ${first.pid}`) ? true : undefined));

    const restart = await overseer('ctl', 'restart', '-c', config);
    assert.equal(restart.code, 0, restart.stderr);
    const second = await run.waitFor('child-ready', 2);
    assert.match(restart.stdout, new RegExp(`child ${second.pid} is serving`));
    assert.equal((await get(port)).pid, second.pid);
    assert.match((await overseer('ctl', 'status', '-c', config)).stdout, /handoff +completed \d+s ago \(ctl\)/);

    // SIGHUP restarts under overseer run (as daemons reload on it), besides SIGUSR2.
    run.master.kill('SIGHUP');
    const third = await run.waitFor('child-ready', 3);
    await run.waitFor('handoff-completed', 2);
    assert.equal((await get(port)).pid, third.pid);

    const unknown = await rawRequest(socket, '{"cmd":"reboot"}\n');
    assert.equal(unknown.ok, false);
    assert.match(String(unknown.error), /unknown command "reboot"; the commands are status, restart, stop, reopen, upgrade/);

    // The same config: the pid file names the running master.
    const again = await overseer('run', '-c', config);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`another overseer master \\(pid ${run.master.pid}\\) already runs with the pid file ${pidFile}`));
    // Only the control path in common: the master answering on it is named.
    const sameSocket = await overseer('run', '--control', socket, '--', 'true');
    assert.equal(sameSocket.code, 1);
    assert.match(sameSocket.stderr, new RegExp(`another overseer master \\(pid ${run.master.pid}\\) already runs with the control socket`));

    // A new release of the bundle appears at the file fetcher's path; ctl upgrade polls now.
    fs.writeFileSync(path.join(dir, 'release/app.mjs'), fs.readFileSync(path.join(dir, 'app.mjs'), 'utf8').replace("VERSION = 'v1'", "VERSION = 'v2'"));
    const upgrade = await overseer('ctl', 'upgrade', '-c', config);
    assert.equal(upgrade.code, 0, upgrade.stderr);
    // The poll waits out the file's quiet period, then swaps and hands off to a cold `node`
    // start: on a loaded machine that alone can take most of the default 10 s.
    await run.waitFor('upgrade-applied', 1, 30_000);
    const fourth = await run.waitFor('child-ready', 4);
    const upgraded = await get(port);
    assert.equal(upgraded.pid, fourth.pid);
    assert.equal(upgraded.version, 'v2');
    const afterUpgrade = JSON.parse((await overseer('ctl', 'status', '--json', '-c', config)).stdout) as { lastUpgrade: { type: string } };
    assert.equal(afterUpgrade.lastUpgrade.type, 'upgrade-applied');

    const stop = await overseer('ctl', 'stop', '-c', config);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, new RegExp(`master ${run.master.pid} stopped`));
    assert.equal(await run.exited, 0);
    for (const leftover of [socket, pidFile, `${socket}.lock`, `${pidFile}.lock`]) assert.equal(fs.existsSync(leftover), false, `${leftover} is removed`);
    assert.doesNotMatch(fs.readFileSync(path.join(dir, 'signals.log'), 'utf8'), /SIGHUP/, 'SIGHUP restarts; it is not forwarded');
  });

  test('after SIGKILL of a master, a new one recovers its stale locks and control socket', async () => {
    const { config, socket, pidFile } = setUp();
    const killed = runCli(['-c', config]);
    const orphan = await killed.waitFor('child-ready');
    await until('the control socket', () => (fs.existsSync(socket) ? true : undefined));
    killed.master.kill('SIGKILL');
    await killed.exited;
    // The child is in its own process group and outlives a killed master; end it as an operator would.
    process.kill(orphan.pid as number, 'SIGTERM');
    await until('the orphaned child to exit', () => (isGone(orphan.pid as number) ? true : undefined));
    assert.ok(fs.existsSync(socket) && fs.existsSync(`${pidFile}.lock`), 'the killed master left its socket and lock');

    const next = runCli(['-c', config]);
    await next.waitFor('child-ready', 1, 15_000);
    const status = await overseer('ctl', 'status', '--json', '-c', config);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { pid: number }).pid, next.master.pid);
    assert.equal(fs.readFileSync(pidFile, 'utf8').trim(), String(next.master.pid));

    const upgrade = await overseer('ctl', 'upgrade', '-c', config);
    assert.equal(upgrade.code, 1);
    assert.match(upgrade.stderr, /no fetcher/);
    const unknownCtl = await overseer('ctl', 'reboot', '-c', config);
    assert.equal(unknownCtl.code, 2);
    assert.match(unknownCtl.stderr, /unknown ctl command "reboot"/);

    const stop = await overseer('ctl', 'stop', '--control', socket);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(await next.exited, 0);
  });
});
