/**
 * minisign parsing and verification: real minisign output (test/fixtures/minisign), signatures
 * from the test helper, every malformed input, and a cross-check against the minisign tool
 * when it is installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isOverseerError, type ErrorCode } from '../../src/errors.js';
import {
  createSignatureCheck,
  parsePublicKey,
  parseSignature,
  verifyFileSignature,
  verifySignature,
  type MinisignPublicKey,
  type MinisignSignature,
} from '../../src/upgrade/minisign.js';
import { createMinisignKey } from '../../support/minisign.js';

const fixtures = fileURLToPath(new URL('../fixtures/minisign/', import.meta.url));
const fixture = (name: string): Promise<string> => readFile(join(fixtures, name), 'utf8');
const hasMinisign = spawnSync('minisign', ['-v'], { encoding: 'utf8' }).error === undefined;

// Key ids as minisign printed them in the fixture .pub comments.
const FIXTURE_KEY_ID = 'F41A17B851D03465';
const OTHER_KEY_ID = '77FCC5F791C7683F';

function expectError(run: () => unknown, code: ErrorCode, ...patterns: RegExp[]): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(isOverseerError(error, code), `expected ${code}, got ${String(error)}`);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

function blake2b512(data: Uint8Array): Buffer {
  return createHash('blake2b512').update(data).digest();
}

function replaceLine(text: string, index: number, line: string): string {
  const lines = text.split('\n');
  lines[index] = line;
  return lines.join('\n');
}

function lineOf(text: string, index: number): string {
  const line = text.split('\n')[index];
  assert.ok(line !== undefined);
  return line;
}

function toCrlf(text: string): string {
  return text.replace(/\n/g, '\r\n');
}

function minisignVerify(dir: string, pub: string, file: string, sig: string, ...flags: string[]) {
  return spawnSync('minisign', ['-V', ...flags, '-p', join(dir, pub), '-m', join(dir, file), '-x', join(dir, sig)], {
    encoding: 'utf8',
    timeout: 10_000,
  });
}

describe('real minisign output (fixtures)', () => {
  let publicKeyFile: string;
  let otherKeyFile: string;
  let release: Buffer;
  let releaseSig: string;
  let legacy: Buffer;
  let legacySig: string;
  let key: MinisignPublicKey;
  let signature: MinisignSignature;

  before(async () => {
    publicKeyFile = await fixture('minisign.pub');
    otherKeyFile = await fixture('other.pub');
    release = await readFile(join(fixtures, 'release.txt'));
    releaseSig = await fixture('release.txt.minisig');
    legacy = await readFile(join(fixtures, 'legacy.txt'));
    legacySig = await fixture('legacy.txt.minisig');
    key = parsePublicKey(publicKeyFile);
    signature = parseSignature(releaseSig, 'release.txt.minisig');
  });

  test('public key: the whole .pub file and the base64 line alone give the key id minisign printed', () => {
    assert.equal(key.keyId, FIXTURE_KEY_ID);
    assert.equal(parsePublicKey(lineOf(publicKeyFile, 1)).keyId, FIXTURE_KEY_ID);
    assert.equal(parsePublicKey(`  ${lineOf(publicKeyFile, 1)}\n\n`).keyId, FIXTURE_KEY_ID);
    assert.equal(key.key.asymmetricKeyType, 'ed25519');
    assert.equal(parsePublicKey(otherKeyFile).keyId, OTHER_KEY_ID);
  });

  test('signature: fields of a prehashed ("ED") .minisig', () => {
    assert.equal(signature.algorithm, 'ED');
    assert.equal(signature.keyId, FIXTURE_KEY_ID);
    assert.equal(signature.signature.length, 64);
    assert.equal(signature.globalSignature.length, 64);
    assert.equal(signature.trustedComment, lineOf(releaseSig, 2).slice('trusted comment: '.length));
    assert.match(signature.trustedComment, /^timestamp:\d+\tfile:release\.txt\thashed$/);
    assert.equal(signature.source, 'release.txt.minisig');
  });

  test('valid ED signature verifies from the BLAKE2b-512, the bytes, a stream and a file', async () => {
    const expected = { keyId: FIXTURE_KEY_ID, algorithm: 'ED', trustedComment: signature.trustedComment };
    assert.deepEqual({ ...verifySignature(key, signature, { blake2b512: blake2b512(release) }) }, expected);
    assert.deepEqual({ ...verifySignature(key, signature, { bytes: release }) }, expected);
    const check = createSignatureCheck(key, signature);
    for (let at = 0; at < release.length; at += 7) check.update(release.subarray(at, at + 7));
    assert.deepEqual({ ...check.verify() }, expected);
    assert.deepEqual({ ...(await verifyFileSignature(key, signature, join(fixtures, 'release.txt'))) }, expected);
  });

  test('tampered message is refused', () => {
    const tampered = Buffer.from(release);
    tampered[3] = (tampered[3] ?? 0) ^ 1;
    expectError(
      () => verifySignature(key, signature, { blake2b512: blake2b512(tampered) }),
      'ERR_OVERSEER_SIGNATURE_INVALID',
      /release\.txt\.minisig/,
      /does not match the release/,
    );
    expectError(
      () => verifySignature(key, signature, { bytes: Buffer.concat([release, Buffer.from('x')]) }),
      'ERR_OVERSEER_SIGNATURE_INVALID',
      /does not match the release/,
    );
  });

  test('tampered trusted comment is refused', () => {
    const text = replaceLine(releaseSig, 2, `${lineOf(releaseSig, 2)}\tadmin`);
    const tampered = parseSignature(text, 'release.txt.minisig');
    expectError(
      () => verifySignature(key, tampered, { blake2b512: blake2b512(release) }),
      'ERR_OVERSEER_SIGNATURE_INVALID',
      /trusted comment/,
      /changed after signing/,
    );
  });

  test('signature from another key names both key ids, as minisign prints them', () => {
    const other = parsePublicKey(otherKeyFile);
    const message = new RegExp(`the key id in release\\.txt\\.minisig is ${FIXTURE_KEY_ID} but the key id in verify\\.publicKey is ${OTHER_KEY_ID}`);
    expectError(() => verifySignature(other, signature, { bytes: release }), 'ERR_OVERSEER_SIGNATURE_INVALID', message);
    // Refused before any byte is downloaded.
    expectError(() => createSignatureCheck(other, signature), 'ERR_OVERSEER_SIGNATURE_INVALID', message);
  });

  test('legacy ("Ed") signature verifies with the whole message and is refused with only the prehash', async () => {
    const legacySignature = parseSignature(legacySig, 'legacy.txt.minisig');
    assert.equal(legacySignature.algorithm, 'Ed');
    assert.equal(legacySignature.trustedComment, 'legacy fixture: file:legacy.txt');
    assert.equal(verifySignature(key, legacySignature, { bytes: legacy }).algorithm, 'Ed');
    assert.equal((await verifyFileSignature(key, legacySignature, join(fixtures, 'legacy.txt'))).trustedComment, 'legacy fixture: file:legacy.txt');
    const check = createSignatureCheck(key, legacySignature);
    check.update(legacy.subarray(0, 10));
    check.update(legacy.subarray(10));
    assert.equal(check.verify().keyId, FIXTURE_KEY_ID);
    expectError(
      () => verifySignature(key, legacySignature, { blake2b512: blake2b512(legacy) }),
      'ERR_OVERSEER_SIGNATURE_INVALID',
      /legacy minisign signature/,
      /without -l/,
    );
    const tampered = Buffer.from(legacy);
    tampered[0] = (tampered[0] ?? 0) ^ 1;
    expectError(() => verifySignature(key, legacySignature, { bytes: tampered }), 'ERR_OVERSEER_SIGNATURE_INVALID', /does not match/);
  });

  test('CRLF .pub and .minisig files are accepted, and the trusted comment loses its CR', () => {
    const crlfKey = parsePublicKey(toCrlf(publicKeyFile));
    const crlfSig = parseSignature(toCrlf(releaseSig));
    assert.equal(crlfSig.trustedComment, signature.trustedComment);
    assert.equal(verifySignature(crlfKey, crlfSig, { bytes: release }).keyId, FIXTURE_KEY_ID);
    assert.equal(verifySignature(key, parseSignature(toCrlf(legacySig)), { bytes: legacy }).algorithm, 'Ed');
    // A byte-order mark from a Windows editor and no final newline are fine too.
    assert.equal(parseSignature(`\uFEFF${toCrlf(releaseSig).trimEnd()}`).keyId, FIXTURE_KEY_ID);
  });

  test('signature line with a flipped signature byte or a swapped comment signature is refused', () => {
    const raw = Buffer.from(lineOf(releaseSig, 1), 'base64');
    raw[40] = (raw[40] ?? 0) ^ 0x80;
    const flipped = parseSignature(replaceLine(releaseSig, 1, raw.toString('base64')));
    expectError(() => verifySignature(key, flipped, { bytes: release }), 'ERR_OVERSEER_SIGNATURE_INVALID', /does not match the release/);
    const swapped = parseSignature(replaceLine(releaseSig, 3, lineOf(legacySig, 3)));
    expectError(() => verifySignature(key, swapped, { bytes: release }), 'ERR_OVERSEER_SIGNATURE_INVALID', /trusted comment/);
  });
});

describe('malformed .minisig files', () => {
  const key = createMinisignKey();
  const good = key.sign(Buffer.from('release'));
  const invalid = (text: string, ...patterns: RegExp[]): void =>
    expectError(() => parseSignature(text, 'https://example.test/app.mjs.minisig'), 'ERR_OVERSEER_SIGNATURE_INVALID', /app\.mjs\.minisig/, ...patterns);

  test('missing lines', () => {
    invalid('', /is empty/);
    invalid('\n\n', /is empty/);
    invalid(`${lineOf(good, 0)}\n`, /ends after line 1/);
    invalid(good.split('\n').slice(0, 2).join('\n'), /ends after line 2/);
    invalid(good.split('\n').slice(0, 3).join('\r\n'), /ends after line 3/);
  });

  test('missing comment prefixes', () => {
    invalid(good.split('\n').slice(1).join('\n'), /line 1 does not start with "untrusted comment: "/);
    invalid(replaceLine(good, 2, lineOf(good, 2).replace('trusted comment: ', 'comment: ')), /line 3 does not start with "trusted comment: "/);
  });

  test('not base64', () => {
    invalid(replaceLine(good, 1, `${lineOf(good, 1).slice(0, 10)}!${lineOf(good, 1).slice(11)}`), /line 2 is not valid base64/, /"!" at column 11/);
    invalid(replaceLine(good, 3, `${lineOf(good, 3).slice(0, 20)}-${lineOf(good, 3).slice(21)}`), /line 4 is not valid base64/, /"-" at column 21/);
    invalid(replaceLine(good, 1, ''), /line 2 is not valid base64/, /empty/);
  });

  test('truncated base64', () => {
    invalid(replaceLine(good, 1, lineOf(good, 1).slice(0, -1)), /line 2 is not valid base64/, /not a multiple of 4/);
    invalid(replaceLine(good, 1, lineOf(good, 1).slice(0, -8)), /line 2 decodes to 69 bytes, not 74/);
    invalid(replaceLine(good, 3, lineOf(good, 3).slice(0, -4)), /line 4 decodes to 63 bytes, not 64/);
    invalid(replaceLine(good, 3, lineOf(good, 3).replace(/=+$/, '')), /line 4 is not valid base64/, /padding/);
  });

  test('something much larger than a .minisig file', () => {
    invalid(`<html>${'x'.repeat(20_000)}</html>`, /is 20013 characters long/, /right URL/);
  });

  test('wrong algorithm', () => {
    const raw = Buffer.from(lineOf(good, 1), 'base64');
    raw.write('Sc', 0, 'latin1');
    invalid(replaceLine(good, 1, raw.toString('base64')), /line 2 uses algorithm "Sc", not "ED" \(prehashed\) or "Ed" \(legacy\)/);
  });

  test('every failure carries the code and the source as subject', () => {
    try {
      parseSignature('nonsense', 'sig-source');
      assert.fail('parseSignature accepted nonsense');
    } catch (error) {
      assert.ok(isOverseerError(error, 'ERR_OVERSEER_SIGNATURE_INVALID'));
      assert.equal(error.subject, 'sig-source');
      assert.match(error.message, /^sig-source: line 1/);
    }
  });
});

describe('malformed public keys (verify.publicKey)', () => {
  const key = createMinisignKey();
  const invalid = (text: unknown, ...patterns: RegExp[]): void =>
    expectError(() => parsePublicKey(text as string), 'ERR_OVERSEER_INVALID_CONFIG', /verify\.publicKey/, ...patterns);

  test('empty, non-string, several lines, comment without key', () => {
    invalid('', /is empty/);
    invalid(' \r\n ', /is empty/);
    invalid(undefined, /must be a string, received undefined/);
    invalid(42, /received number/);
    invalid(`${key.publicKey}\n${key.publicKey}`, /has 2 lines/);
    invalid('untrusted comment: minisign public key 0123456789ABCDEF\n', /no key line/);
  });

  test('not base64, truncated, wrong length', () => {
    invalid(`${key.publicKey.slice(0, 5)}*${key.publicKey.slice(6)}`, /not valid base64/, /"\*" at column 6/);
    invalid(key.publicKey.slice(0, -1), /not valid base64/, /not a multiple of 4/);
    invalid(key.publicKey.slice(0, -4), /decodes to 39 bytes, not 42/);
    invalid(Buffer.alloc(64).toString('base64'), /decodes to 64 bytes, not 42/);
  });

  test('wrong algorithm', () => {
    const raw = Buffer.from(key.publicKey, 'base64');
    raw.write('ED', 0, 'latin1');
    invalid(raw.toString('base64'), /uses algorithm "ED", not "Ed"/);
  });

  test('a secret key or a file path gets a pointed hint', () => {
    invalid('untrusted comment: minisign encrypted secret key\nRWRTY0Iy', /secret key/);
    invalid(Buffer.alloc(158).toString('base64'), /secret key/);
    invalid('./keys/minisign.pub', /looks like a file path/, /readFileSync/);
  });

  test('the error names the option as its subject, and a custom option name is used', () => {
    try {
      parsePublicKey('nope!', 'releases.publicKey');
      assert.fail('parsePublicKey accepted nonsense');
    } catch (error) {
      assert.ok(isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG'));
      assert.equal(error.subject, 'releases.publicKey');
      assert.match(error.message, /^releases\.publicKey is not valid base64/);
    }
  });
});

describe('test helper signatures', () => {
  test('helper key and signatures verify, in both algorithms and with CRLF', () => {
    const signer = createMinisignKey();
    const data = Buffer.from('console.log("v2")\n');
    const key = parsePublicKey(signer.publicKeyFile);
    assert.equal(key.keyId, signer.keyId);
    assert.match(signer.keyId, /^[0-9A-F]{16}$/);
    assert.equal(parsePublicKey(signer.publicKey).keyId, signer.keyId);
    const prehashed = parseSignature(signer.sign(data, 'version:2.0.0'));
    assert.deepEqual({ ...verifySignature(key, prehashed, { blake2b512: blake2b512(data) }) }, {
      keyId: signer.keyId,
      algorithm: 'ED',
      trustedComment: 'version:2.0.0',
    });
    const legacy = parseSignature(toCrlf(signer.signWith(data, { legacy: true, trustedComment: 'ünïcode ✓' })));
    assert.equal(verifySignature(parsePublicKey(toCrlf(signer.publicKeyFile)), legacy, { bytes: data }).trustedComment, 'ünïcode ✓');
    assert.match(parseSignature(signer.sign(data)).trustedComment, /^timestamp:\d+\thashed$/);
  });

  test('two helper keys do not verify each other', () => {
    const one = createMinisignKey();
    const two = createMinisignKey();
    assert.notEqual(one.keyId, two.keyId);
    const data = Buffer.from('x');
    expectError(
      () => verifySignature(parsePublicKey(two.publicKeyFile), parseSignature(one.sign(data)), { bytes: data }),
      'ERR_OVERSEER_SIGNATURE_INVALID',
      new RegExp(`is ${one.keyId} but the key id in verify\\.publicKey is ${two.keyId}`),
    );
  });
});

describe('the minisign tool', { skip: hasMinisign ? false : 'minisign is not on PATH' }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'overseer-minisign-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('accepts signatures made by the helper (and refuses a tampered one)', async () => {
    const signer = createMinisignKey();
    const data = Buffer.from('export const version = "2.0.0";\n');
    await writeFile(join(dir, 'helper.pub'), signer.publicKeyFile);
    await writeFile(join(dir, 'app.mjs'), data);
    await writeFile(join(dir, 'app.mjs.minisig'), signer.sign(data, 'helper cross-check'));
    await writeFile(join(dir, 'legacy.mjs.minisig'), signer.signWith(data, { legacy: true, trustedComment: 'legacy cross-check' }));

    const prehashed = minisignVerify(dir, 'helper.pub', 'app.mjs', 'app.mjs.minisig', '-H');
    assert.equal(prehashed.status, 0, prehashed.stderr);
    assert.match(prehashed.stdout, /Trusted comment: helper cross-check/);
    const legacy = minisignVerify(dir, 'helper.pub', 'app.mjs', 'legacy.mjs.minisig');
    assert.equal(legacy.status, 0, legacy.stderr);

    await writeFile(join(dir, 'app.mjs'), Buffer.concat([data, Buffer.from('//')]));
    const tampered = minisignVerify(dir, 'helper.pub', 'app.mjs', 'app.mjs.minisig');
    assert.notEqual(tampered.status, 0);
  });

  test('signs with a fresh key pair and overseer verifies the result', async () => {
    const generate = spawnSync('minisign', ['-G', '-W', '-p', join(dir, 'tool.pub'), '-s', join(dir, 'tool.key')], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(generate.status, 0, generate.stderr);
    await writeFile(join(dir, 'tool.bin'), Buffer.from([0, 1, 2, 255, 13, 10]));
    const signed = spawnSync('minisign', ['-S', '-s', join(dir, 'tool.key'), '-m', join(dir, 'tool.bin'), '-t', 'fresh\tcomment'], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(signed.status, 0, signed.stderr);
    const key = parsePublicKey(await readFile(join(dir, 'tool.pub'), 'utf8'));
    const signature = parseSignature(await readFile(join(dir, 'tool.bin.minisig'), 'utf8'));
    const result = await verifyFileSignature(key, signature, join(dir, 'tool.bin'));
    assert.equal(result.trustedComment, 'fresh\tcomment');
    assert.equal(result.algorithm, 'ED');
  });
});
