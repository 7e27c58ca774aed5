/**
 * Fuzzes the minisign parsers that face attackers (a `.minisig` comes from the release source,
 * a public key from config): mutated real signatures and keys, from minisign itself
 * (test/fixtures/minisign/) and from support/minisign.ts. Every rejection must be an
 * OverseerError with its code, never another type, and every call must return promptly.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isOverseerError } from '../../src/errors.ts';
import { parsePublicKey, parseSignature, signedVersion, verifySignature } from '../../src/upgrade/minisign.ts';
import { fixture } from '../helpers/master.ts';
import { createMinisignKey } from '../../support/minisign.ts';

const release = fs.readFileSync(fixture('minisign/release.txt'));
const generatedKey = createMinisignKey();
const generated = Buffer.from('a release signed by support/minisign.ts\n');
const signatures = [
  fs.readFileSync(fixture('minisign/release.txt.minisig'), 'utf8'),
  fs.readFileSync(fixture('minisign/legacy.txt.minisig'), 'utf8'),
  generatedKey.sign(generated, 'version:1.2.3 file:app.mjs'),
];
const keys = [
  fs.readFileSync(fixture('minisign/minisign.pub'), 'utf8'),
  fs.readFileSync(fixture('minisign/other.pub'), 'utf8'),
  generatedKey.publicKeyFile,
  generatedKey.publicKey,
];
const realKey = parsePublicKey(keys[0] as string);

/** One edit of a text: what a hostile mirror or a broken transfer could do to it. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.string({ maxLength: 12 }) }),
  fc.record({ kind: fc.constant('insert-base64' as const), at: fc.nat(), text: fc.stringMatching(/^[A-Za-z0-9+/=]{1,8}$/) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swap-lines' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant('repeat' as const), times: fc.integer({ min: 2, max: 100 }) }),
  fc.record({ kind: fc.constant('crlf' as const) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(text: string, edits: readonly Mutation[]): string {
  let out = text;
  for (const edit of edits) {
    const at = 'at' in edit ? edit.at % (out.length + 1) : 0;
    switch (edit.kind) {
      case 'flip': {
        const bytes = Buffer.from(out, 'utf8');
        if (bytes.length === 0) break;
        const index = edit.at % bytes.length;
        bytes[index] = (bytes[index] as number) ^ (1 << edit.bit);
        out = bytes.toString('utf8');
        break;
      }
      case 'insert':
      case 'insert-base64':
        out = out.slice(0, at) + edit.text + out.slice(at);
        break;
      case 'delete':
        out = out.slice(0, at) + out.slice(at + edit.length);
        break;
      case 'truncate':
        out = out.slice(0, at);
        break;
      case 'swap-lines': {
        const lines = out.split('\n');
        const a = edit.a % lines.length;
        const b = edit.b % lines.length;
        [lines[a], lines[b]] = [lines[b] as string, lines[a] as string];
        out = lines.join('\n');
        break;
      }
      case 'repeat':
        out = out.repeat(edit.times).slice(0, 64 * 1024);
        break;
      case 'crlf':
        out = out.replace(/\n/g, '\r\n');
        break;
    }
  }
  return out;
}

/**
 * Runs `call`; a throw must be an OverseerError with `code`; the call must be quick. Counted in
 * CPU time, not wall time: on a loaded machine a call may wait for a core, which is no hang.
 */
function expectOnly<T>(code: string, call: () => T): T | undefined {
  const started = process.cpuUsage();
  try {
    return call();
  } catch (error) {
    assert.ok(isOverseerError(error), `threw a ${(error as Error)?.constructor?.name}: ${String(error)}`);
    assert.equal(error.code, code);
    return undefined;
  } finally {
    const spent = process.cpuUsage(started);
    assert.ok(spent.user + spent.system < 1_000_000, 'returned within a second of CPU time');
  }
}

describe('minisign parsers under fuzzing', () => {
  test('mutated .minisig files: parsed, or refused with ERR_OVERSEER_SIGNATURE_INVALID; verification too', () => {
    fc.assert(
      fc.property(fc.constantFrom(...signatures.keys()), fc.array(mutation, { minLength: 1, maxLength: 4 }), (which, edits) => {
        const text = mutate(signatures[which] as string, edits);
        const signature = expectOnly('ERR_OVERSEER_SIGNATURE_INVALID', () => parseSignature(text, 'fuzzed.minisig'));
        if (signature === undefined) return;
        assert.equal(typeof signedVersion(signature.trustedComment), typeof signedVersion(signature.trustedComment));
        const key = which === 2 ? parsePublicKey(generatedKey.publicKey) : realKey;
        const message = which === 2 ? generated : release;
        const verified = expectOnly('ERR_OVERSEER_SIGNATURE_INVALID', () =>
          verifySignature(key, signature, { blake2b512: createHash('blake2b512').update(message).digest() }),
        );
        // A mutation that still verifies changed nothing that is signed.
        if (verified !== undefined) assert.equal(verified.trustedComment, parseSignature(signatures[which] as string).trustedComment);
      }),
      { numRuns: 3000 },
    );
  });

  test('mutated public keys: parsed, or refused with ERR_OVERSEER_INVALID_CONFIG', () => {
    fc.assert(
      fc.property(fc.constantFrom(...keys), fc.array(mutation, { minLength: 1, maxLength: 4 }), (key, edits) => {
        expectOnly('ERR_OVERSEER_INVALID_CONFIG', () => parsePublicKey(mutate(key, edits)));
      }),
      { numRuns: 3000 },
    );
  });

  test('arbitrary text and values: never another error type', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 400 }), fc.anything()), (value) => {
        expectOnly('ERR_OVERSEER_SIGNATURE_INVALID', () => parseSignature(value as string));
        expectOnly('ERR_OVERSEER_INVALID_CONFIG', () => parsePublicKey(value as string));
      }),
      { numRuns: 2000 },
    );
  });

  test('the version word of a trusted comment', () => {
    assert.equal(signedVersion('version:1.2.3 file:app.mjs'), '1.2.3');
    assert.equal(signedVersion('timestamp:1795446076\tfile:release.txt\tversion:2.0.0-rc.1\thashed'), '2.0.0-rc.1');
    assert.equal(signedVersion('timestamp:1795446076\tfile:release.txt\thashed'), undefined);
    assert.equal(signedVersion('app version: 1.2.3'), undefined);
    assert.equal(signedVersion('myversion:1.2.3'), undefined);
  });
});
