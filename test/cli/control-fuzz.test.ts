import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { CONTROL_COMMANDS, sendControl, startControlServer, type ControlServer, type ControlTarget } from '../../src/cli/control.ts';
import { CODES } from '../../src/errors.ts';
import { cleanupCli, scratch } from '../helpers/cli.ts';

/** A stand-in master: every command works, nothing is really restarted or stopped. */
const calls: string[] = [];
const target: ControlTarget = {
  status: () => ({ pid: process.pid, children: [] }) as unknown as ReturnType<ControlTarget['status']>,
  handoff: async () => {
    calls.push('handoff');
    return { ok: true, pid: 1 };
  },
  shutdown: () => void calls.push('shutdown'),
  forward: () => void calls.push('forward'),
  pollNow: () => false,
};

let server: ControlServer;
let socketPath: string;

before(async () => {
  socketPath = path.join(scratch('overseer-control-fuzz-'), 'ctl.sock');
  server = await startControlServer({ path: socketPath, master: () => target, reopenSignal: 'SIGUSR1' });
});
after(() => {
  server?.close();
  cleanupCli();
});

/** Sends raw bytes (then ends its side) and collects everything the server says until it closes; fails after 5 s. */
function exchange(bytes: Uint8Array | string, halfClose = true): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within 5 s to ${JSON.stringify(Buffer.from(bytes).toString('latin1').slice(0, 80))}; got ${JSON.stringify(answer)}`));
    }, 5_000);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
      // `stop` keeps the connection open until the master exits; one line is its whole answer.
      if (!halfClose && answer.includes('\n')) socket.destroy();
    });
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.write(bytes);
    if (halfClose) socket.end();
  });
}

/** The answer is exactly one JSON line: ok, or an error naming a code from the table. */
function assertOneAnswer(answer: string): { ok: boolean; code?: string; error?: string } {
  assert.ok(answer.endsWith('\n') && answer.indexOf('\n') === answer.length - 1, `one line: ${JSON.stringify(answer.slice(0, 200))}`);
  const parsed = JSON.parse(answer) as { ok: boolean; code?: string; error?: string };
  if (!parsed.ok) {
    assert.ok(typeof parsed.code === 'string' && Object.hasOwn(CODES, parsed.code), `a known code: ${answer}`);
    assert.equal(typeof parsed.error, 'string');
  }
  return parsed;
}

const isCommand = (value: unknown) => typeof value === 'string' && (CONTROL_COMMANDS as readonly string[]).includes(value);

describe('the control socket request parser, fuzzed', () => {
  test('random bytes: one JSON answer per connection, never a crash or a hang', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), async (bytes) => {
        const answer = await exchange(bytes);
        const parsed = assertOneAnswer(answer);
        // Random bytes are almost never a valid request; when they are, the stand-in agrees.
        if (parsed.ok) assert.ok(Buffer.from(bytes).toString().includes('cmd'));
      }),
      { numRuns: 150 },
    );
  });

  test('JSON of the wrong shape or type is refused with ERR_OVERSEER_CONTROL_FAILED', async () => {
    const request = fc.oneof(
      fc.jsonValue(),
      fc.record({ cmd: fc.jsonValue() }),
      fc.record({ cmd: fc.constantFrom('status', 'restart', 'reopen', 'upgrade', 'STATUS', '__proto__', 'constructor', ''), extra: fc.jsonValue() }, { requiredKeys: ['cmd'] }),
    );
    await fc.assert(
      fc.asyncProperty(request, fc.boolean(), async (value, newline) => {
        const text = JSON.stringify(value) ?? 'null';
        const answer = await exchange(`${text}${newline ? '\n' : ''}`);
        const parsed = assertOneAnswer(answer);
        if (Buffer.byteLength(text) > 4096) return assert.equal(parsed.ok, false);
        const cmd = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as { cmd?: unknown }).cmd : undefined;
        if (!isCommand(cmd) || cmd === 'upgrade' || cmd === 'reopen') assert.equal(parsed.code, 'ERR_OVERSEER_CONTROL_FAILED', answer);
        else assert.equal(parsed.ok, true, answer);
      }),
      { numRuns: 300 },
    );
  });

  test('over-long lines, with or without a newline, are refused without being kept', async () => {
    for (const length of [4097, 70_000, 1_000_000]) {
      for (const tail of ['', '\n', '\n{"cmd":"status"}\n']) {
        const parsed = assertOneAnswer(await exchange(`{"cmd":"${'x'.repeat(length)}"}${tail}`));
        assert.equal(parsed.ok, false);
        assert.match(parsed.error ?? '', /at most 4096 bytes/);
      }
    }
  });

  test('an empty request, a half-closed one, and a stop all get their answer', async () => {
    assert.match(assertOneAnswer(await exchange('')).error ?? '', /no request/);
    assert.equal(assertOneAnswer(await exchange('{"cmd":"status"}')).ok, true, 'no newline, then the client ends its side');
    assert.equal(assertOneAnswer(await exchange('{"cmd":"stop"}\n', false)).ok, true);
    assert.ok(calls.includes('shutdown'));
  });

  test('many connections at once, each with garbage: every one is answered, and the server still serves', async () => {
    const garbage = fc.sample(fc.oneof(fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)), fc.string({ maxLength: 300 })), 200);
    const answers = await Promise.all(garbage.map((bytes) => exchange(bytes)));
    for (const answer of answers) assertOneAnswer(answer);
    const { response } = await sendControl(socketPath, 'status', { timeout: 5_000 });
    assert.equal(response.ok, true);
  });
});
