import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Load, ask } from '../helpers/load.ts';
import { fixture, startMaster, tempDir, until, type RunningMaster } from '../helpers/master.ts';
import { parseAddress } from '../../src/core/config.ts';
import { bindAll, closeAll, startListening } from '../../src/core/listeners.ts';

const app = fixture('app.mjs');
const masters: RunningMaster[] = [];
after(() => Promise.all(masters.map((master) => master.stop())));

async function start(addresses: string[]) {
  const master = await startMaster(app, { env: { APP_ADDRESSES: JSON.stringify(addresses) } });
  masters.push(master);
  return master;
}

function getVia(target: { port: number; host: string } | { socketPath: string }): Promise<{ pid: number }> {
  const options: net.NetConnectOpts = 'socketPath' in target ? { path: target.socketPath } : target;
  return new Promise((resolve, reject) => {
    const socket = net.connect(options, () => socket.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    let data = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (data += chunk));
    socket.on('end', () => resolve(JSON.parse(data.slice(data.indexOf('\r\n\r\n') + 4)) as { pid: number }));
    socket.on('error', reject);
  });
}

/** Established TCP connections whose socket is open in `pid` (Linux /proc). */
/** The inodes of the sockets a process has open (its listening sockets, its IPC channel, …). */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    const link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: 'utf8' });
    const match = /^socket:\[(\d+)\]$/.exec(link);
    if (match?.[1]) inodes.add(match[1]);
  }
  return inodes;
}

/** How many of its sockets are established TCP connections (reads the whole TCP table: slow on a busy machine). */
function establishedConnections(pid: number, inodes = socketInodes(pid)): number {
  let count = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] === '01' && fields[9] && inodes.has(fields[9])) count++;
    }
  }
  return count;
}

describe('addresses', () => {
  test('parses the address forms and rejects bad ones naming the value', () => {
    assert.deepEqual(parseAddress(':3000'), { kind: 'tcp', host: undefined, port: 3000, text: ':3000' });
    assert.deepEqual(parseAddress('127.0.0.1:80'), { kind: 'tcp', host: '127.0.0.1', port: 80, text: '127.0.0.1:80' });
    assert.deepEqual(parseAddress('[::1]:0'), { kind: 'tcp', host: '::1', port: 0, text: '[::1]:0' });
    assert.equal(parseAddress('unix:/tmp/a.sock').kind, 'unix');
    for (const bad of ['localhost:3000', '127.0.0.1', '::1:3000', ':99999', 'unix:', '1.2.3.4:x']) {
      assert.throws(() => parseAddress(bad), (error: Error & { code?: string }) => error.code === 'ERR_OVERSEER_BAD_ADDRESS' && error.message.includes(JSON.stringify(bad)));
    }
  });

  test('binds :port, 127.0.0.1:port, [::1]:port and unix:/path at once, in order', async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, 'app.sock');
    const master = await start([':0', '127.0.0.1:0', '[::1]:0', `unix:${socketPath}`]);
    const started = master.events.find((event) => event.type === 'master-started');
    const bound = started?.type === 'master-started' ? started.addresses : [];
    const [any, v4, v6] = bound.slice(0, 3).map((address) => Number(address.slice(address.lastIndexOf(':') + 1)));
    assert.ok(any && v4 && v6, `real ports reported: ${bound.join(' ')}`);
    assert.deepEqual(bound, [`:${any}`, `127.0.0.1:${v4}`, `[::1]:${v6}`, `unix:${socketPath}`]);
    const pids = new Set<number>();
    for (const target of [{ port: any, host: '127.0.0.1' }, { port: v4, host: '127.0.0.1' }, { port: v6, host: '::1' }, { socketPath }]) {
      pids.add((await getVia(target)).pid);
    }
    assert.equal(pids.size, 1, 'one child serves every socket');
    assert.ok(!pids.has(master.pid));
    // A handoff keeps every socket: the new child serves all four.
    master.process.kill('SIGUSR2');
    const done = await master.waitFor('handoff-completed');
    assert.equal((await getVia({ socketPath })).pid, done.to);
    assert.equal((await getVia({ port: v6, host: '::1' })).pid, done.to);
    await master.stop();
    assert.equal(fs.existsSync(socketPath), false, 'the master removes its unix socket on exit');
  });

  test('clients connecting before the first child listens wait in the backlog, never refused', async () => {
    const controlFile = path.join(tempDir(), 'control.json');
    fs.writeFileSync(controlFile, JSON.stringify({ mode: 'slow-start' }));
    const master = await startMaster(app, { noWait: true, env: { APP_CONTROL: controlFile, APP_ADDRESSES: JSON.stringify(['127.0.0.1:0']) } });
    masters.push(master);
    const early = await ask(master.port);
    const ready = await master.waitFor('child-ready');
    assert.equal(early.pid, ready.pid);
    assert.ok(master.events.findIndex((event) => event.type === 'child-ready') >= 0);
  });

  test('port 0 binds a free port and reports it', async () => {
    const master = await start(['127.0.0.1:0']);
    assert.ok(master.port > 0);
    assert.ok((await ask(master.port)).pid > 0);
  });

  test('EADDRINUSE fails fast with an error naming the address, before any child', async () => {
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => blocker.once('listening', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const master = startMaster(app, { env: { APP_ADDRESSES: JSON.stringify([`127.0.0.1:${port}`]) } });
      await assert.rejects(master, (error: Error) => {
        assert.match(error.message, new RegExp(`ERR_OVERSEER_ADDRESS_IN_USE|cannot bind 127\\.0\\.0\\.1:${port}`));
        assert.match(error.message, /EADDRINUSE/);
        return true;
      });
    } finally {
      blocker.close();
    }
  });

  test('a live unix socket is in use; a stale socket file is replaced', async () => {
    const dir = tempDir();
    const live = path.join(dir, 'live.sock');
    const holder = net.createServer().listen(live);
    await new Promise((resolve) => holder.once('listening', resolve));
    try {
      await assert.rejects(startMaster(app, { env: { APP_ADDRESSES: JSON.stringify([`unix:${live}`]) } }), /another process listens there/);
    } finally {
      holder.close();
    }
    const stale = path.join(dir, 'stale.sock');
    // A socket file nobody listens on, as a SIGKILLed master leaves behind.
    const holderProcess = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => holderProcess.stdout?.once('data', resolve));
    holderProcess.kill('SIGKILL');
    await new Promise((resolve) => holderProcess.once('exit', resolve));
    assert.ok(fs.statSync(stale).isSocket(), 'a stale socket file is left');
    const master = await start([`unix:${stale}`]);
    assert.ok((await getVia({ socketPath: stale })).pid > 0);
    await master.stop();
  });

  test('the master never accepts a connection itself', async () => {
    const master = await start(['127.0.0.1:0']);
    const load = new Load({ port: master.port, keepAlive: true, concurrency: 8, maxRequests: 2_000 });
    // Sampled cheaply: an accepted connection would be a socket the master did not have before;
    // only a new one sends the sample to the TCP table.
    const before = socketInodes(master.pid);
    assert.equal(establishedConnections(master.pid, before), 0);
    let sampled = 0;
    while (load.sent < 2_000 && sampled < 200) {
      const now = socketInodes(master.pid);
      if ([...now].some((inode) => !before.has(inode))) assert.equal(establishedConnections(master.pid, now), 0);
      sampled++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    master.process.kill('SIGUSR2');
    await master.waitFor('handoff-completed');
    assert.equal(establishedConnections(master.pid), 0);
    const result = await load.done;
    assert.deepEqual(result.failures, []);
    assert.ok(result.answers.every((answer) => answer.pid !== master.pid));
  });
});

describe('bind errors say their real cause', () => {
  test('a unix socket in a directory that does not exist says so (libuv reports it as EACCES)', async () => {
    const dir = tempDir();
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const missing = path.join(dir, 'missing', 'deeper');
    await assert.rejects(bindAll([parseAddress(`unix:${missing}/a.sock`, '--listen')]), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_OVERSEER_BAD_ADDRESS');
      assert.match(error.message, new RegExp(`the directory ${missing} does not exist; create it`));
      assert.doesNotMatch(error.message, /ports below 1024/);
      return true;
    });
    fs.writeFileSync(path.join(dir, 'file'), '');
    await assert.rejects(bindAll([parseAddress(`unix:${dir}/file/a.sock`)]), /ENOTDIR \(a part of the path is a file, not a directory\)/);
  });

  test('the privileged-port hint is kept for ports below 1024 only', async () => {
    // Root may bind anything: then there is no error to word, and binding must work.
    const bound = await bindAll([parseAddress('127.0.0.1:0')]);
    closeAll(bound);
    if (process.getuid?.() !== 0) await assert.rejects(bindAll([parseAddress('127.0.0.1:81')]), /EACCES \(ports below 1024 need privileges/);
  });

  test('a port another process starts listening on between the bind and the listen is named, with its cause', async () => {
    // The master binds, then another program (bound too, SO_REUSEADDR as Node binds) listens
    // first: the race of two programs started at once on one port.
    const [bound] = await bindAll([parseAddress('127.0.0.1:0')]);
    assert.ok(bound);
    const port = Number(bound.info.address.split(':').pop());
    const other = net.createServer();
    await new Promise<void>((resolve, reject) => other.once('error', reject).listen(port, '127.0.0.1', resolve));
    try {
      await assert.rejects(startListening([bound]), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ERR_OVERSEER_ADDRESS_IN_USE');
        assert.match(error.message, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: another process started listening there at the same moment \\(EADDRINUSE\\)`));
        return true;
      });
    } finally {
      other.close();
      closeAll([bound]);
    }
  });

  test('run() without any address warns in the master at start, and the program still runs', async () => {
    const master = await start([]);
    await until('the warning', () => (master.output.stderr.includes('warning: no address configured') ? true : undefined));
    assert.match(master.output.stderr, /no address configured: the master binds no socket and state\.listen\(\) will fail; give run\(\) an address such as \{ address: 3000 \}/);
    const forked = master.events.findIndex((event) => event.type === 'child-forked');
    assert.ok(forked >= 0, 'the program that serves nothing still runs');
  });
});
