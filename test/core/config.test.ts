import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { inspect } from 'node:util';
import { DEFAULTS, normalizeConfig } from '../../src/core/config.ts';
import { createState } from '../../src/core/state.ts';
import { OverseerError, isOverseerError } from '../../src/errors.ts';

const program = () => {};

describe('normalizeConfig', () => {
  test('fills defaults and freezes the result, leaving the input alone', () => {
    const input = { program, address: ':3000' };
    const config = normalizeConfig(input);
    assert.equal(config.terminateTimeout, DEFAULTS.terminateTimeout);
    assert.equal(config.readyTimeout, 30_000);
    assert.equal(config.restartSignal, 'SIGUSR2');
    assert.equal(config.minFetchInterval, 1_000);
    assert.equal(config.respawn, undefined);
    assert.ok(Object.isFrozen(config));
    assert.deepEqual(Object.keys(input), ['program', 'address']);
  });

  const invalid: Array<[string, unknown, RegExp]> = [
    ['not an object', 42, /needs a config object.*got 42/],
    ['unknown key', { program, adress: ':3000' }, /config has no option "adress" \(did you mean "address"\?\); its options are program, address/],
    ['missing program', { address: ':3000' }, /config\.program must be given \(a function.*got undefined/],
    ['wrong type', { program, noRestart: 'yes' }, /config\.noRestart must be true or false; got "yes"/],
    ['both address and addresses', { program, address: ':1', addresses: [':2'] }, /address and config\.addresses were both given/],
    ['negative duration', { program, terminateTimeout: -1 }, /config\.terminateTimeout must be a duration in milliseconds.*got -1/],
    ['string duration', { program, readyTimeout: '30s' }, /config\.readyTimeout must be a duration in milliseconds.*got "30s"/],
    ['NaN duration', { program, minFetchInterval: Number.NaN }, /config\.minFetchInterval .*got NaN/],
    ['bad address', { program, address: 'localhost:3000' }, /"localhost:3000" must use an IP literal/],
    ['addresses not an array', { program, addresses: ':3000' }, /config\.addresses must be an array/],
    ['repeated address', { program, addresses: [':3000', ':3000'] }, /without repeats; got ":3000"/],
    ['restart signal SIGKILL', { program, restartSignal: 'SIGKILL' }, /config\.restartSignal must be a catchable signal.*got "SIGKILL"/],
    ['restart signal typo', { program, restartSignal: 'SIGUSR3' }, /got "SIGUSR3"/],
    ['respawn unknown option', { program, respawn: { retries: 3 } }, /config\.respawn has no option \"retries\"; its options are minDelay/],
    ['respawn with noRestart', { program, respawn: true, noRestart: true }, /noRestart/],
    ['verify sha256', { program, verify: { sha256: 'yes' } }, /config\.verify\.sha256 must be "optional" or "required"; got "yes"/],
    ['verify unknown key', { program, verify: { publickey: 'x' } }, /config\.verify has no option \"publickey\" \(did you mean \"publicKey\"\?\)/],
    ['bad public key', { program, verify: { publicKey: 'not a key' } }, /verify\.publicKey/],
    ['fetcher without fetch', { program, fetcher: { interval: 1 } }, /config\.fetcher must be a fetcher/],
    ['bad version', { program, version: 'one' }, /config\.version must be a semver.*got "one"/],
    ['max bundle size', { program, maxBundleSize: 0 }, /config\.maxBundleSize/],
  ];
  for (const [name, input, message] of invalid) {
    test(`rejects ${name}, naming the option and the value`, () => {
      assert.throws(() => normalizeConfig(input), (error: Error & { code?: string }) => {
        assert.match(error.code ?? '', /^ERR_OVERSEER_(INVALID_CONFIG|BAD_ADDRESS)$/);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});

describe('port numbers as addresses', () => {
  test('address: 3080 binds all interfaces on that port, as server.listen(3080) would', () => {
    const config = normalizeConfig({ program, address: 3080 });
    assert.deepEqual(config.addresses, [{ kind: 'tcp', host: undefined, port: 3080, text: ':3080' }]);
    assert.deepEqual(normalizeConfig({ program, addresses: [3000, '127.0.0.1:3001', 0] }).addresses.map((address) => address.text), [':3000', '127.0.0.1:3001', ':0']);
  });

  test('a number that is no port, or a repeat, is refused naming it', () => {
    for (const [input, message] of [
      [{ program, address: 70000 }, /config\.address 70000 is not a port number \(a whole number from 0 to 65535\)/],
      [{ program, address: 30.5 }, /config\.address 30\.5 is not a port number/],
      [{ program, addresses: [3000, -1] }, /config\.addresses\[1\] -1 is not a port number/],
      [{ program, addresses: [3000, ':3000'] }, /without repeats/],
      [{ program, address: true }, /config\.address must be a string such as ":3000".*or a port number/],
    ] as const) {
      assert.throws(() => normalizeConfig(input), (error: Error & { code?: string }) => /^ERR_OVERSEER_(BAD_ADDRESS|INVALID_CONFIG)$/.test(error.code ?? '') && message.test(error.message));
    }
  });
});

describe('state.listen() without a listener', () => {
  const state = (listeners: object[]) => createState({
    enabled: true, id: '', version: undefined, listeners, addresses: [], bundlePath: '/x', shutdown: new AbortController().signal,
  });

  test('with no address configured it rejects at once with an OverseerError saying how to give one', async () => {
    await assert.rejects(state([]).listen(http.createServer()), (error: unknown) => {
      assert.ok(isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG'), String(error));
      assert.match(error.message, /state\.listen\(server, 0\) has no listener 0: no address was configured; give run\(\) an address such as \{ address: 3000 \}/);
      return true;
    });
  });

  test('an index past the configured addresses names how many there are', async () => {
    await assert.rejects(state([{}]).listen(http.createServer(), 2), /has no listener 2: there are 1 \(0 to 0/);
  });
});

describe('OverseerError details', () => {
  test('only the details that were given are properties: no "pid: undefined" when printed', () => {
    const bare = new OverseerError('ERR_OVERSEER_BAD_ADDRESS', 'cannot bind');
    assert.doesNotMatch(inspect(bare), /undefined/);
    assert.deepEqual(Object.keys(bare).sort(), ['code', 'name']);
    const some = new OverseerError('ERR_OVERSEER_CHILD_FAILED', 'it died', { pid: 42, exitCode: null });
    assert.equal(some.pid, 42);
    assert.equal(some.exitCode, null);
    assert.equal(some.subject, undefined);
    assert.match(inspect(some), /pid: 42/);
    assert.doesNotMatch(inspect(some), /subject|signal/);
  });
});
