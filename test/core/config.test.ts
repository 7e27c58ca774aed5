import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULTS, normalizeConfig } from '../../src/core/config.ts';

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
