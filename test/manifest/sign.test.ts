/**
 * minisign signing (src/manifest/sign.ts) against the real tool: fixtures made by minisign 0.11
 * (test/fixtures/minisign/publisher*.key, manifest.json and its .minisig) always run, so the
 * formats are checked on a machine without minisign; with minisign on PATH, the tool itself
 * verifies what we sign and signs with the keys we make, and we open a key it just made.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isOverseerError } from '../../src/errors.ts';
import { blake2b } from '../../src/manifest/blake2b.ts';
import { generateMinisignKeyPair, KDF_INTERACTIVE, KDF_SENSITIVE, readSecretKey, scryptParams, signMinisign } from '../../src/manifest/sign.ts';
import { parsePublicKey, parseSignature, verifySignature } from '../../src/upgrade/minisign.ts';

const fixtures = fileURLToPath(new URL('../fixtures/minisign/', import.meta.url));
const fixture = (name: string): Promise<string> => readFile(join(fixtures, name), 'utf8');
const hasMinisign = spawnSync('minisign', ['-v'], { encoding: 'utf8' }).error === undefined;
// The password of test/fixtures/minisign/publisher.key (a throwaway test key).
const FIXTURE_PASSWORD = 'correct horse battery staple';
const FIXTURE_KEY_ID = 'DCBC9EA4AA36489F';
// The trusted comment the fixture signatures were made with (minisign -t).
const FIXTURE_COMMENT = 'timestamp:1796000000\tfile:manifest.json\thashed';

async function rejectsWith(run: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(run, (error: unknown) => {
    assert.ok(isOverseerError(error, 'ERR_OVERSEER_SECRET_KEY_INVALID'), `expected ERR_OVERSEER_SECRET_KEY_INVALID, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

/** The secret key file with its decoded bytes changed by `change`. */
function tamper(text: string, change: (bytes: Buffer) => void): string {
  const [comment, line] = text.split('\n');
  const bytes = Buffer.from(line ?? '', 'base64');
  change(bytes);
  return `${comment}\n${bytes.toString('base64')}\n`;
}

describe('BLAKE2b with a chosen length', () => {
  test('matches the RFC 7693 / reference vectors and node:crypto\'s BLAKE2b-512', () => {
    assert.equal(blake2b(Buffer.from('abc'), 32).toString('hex'), 'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319');
    assert.equal(blake2b(Buffer.alloc(0), 32).toString('hex'), '0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8');
    for (const size of [0, 1, 74, 127, 128, 129, 255, 256, 257, 1000]) {
      const data = randomBytes(size);
      assert.deepEqual(blake2b(data, 64), createHash('blake2b512').update(data).digest(), `${size} bytes`);
    }
    assert.throws(() => blake2b(Buffer.alloc(1), 0), RangeError);
  });
});

describe('scrypt parameters', () => {
  test('are libsodium\'s: minisign\'s default cost is N=2^20, r=8, p=1', () => {
    assert.deepEqual(scryptParams(KDF_SENSITIVE), { N: 2 ** 20, r: 8, p: 1 });
    assert.deepEqual(scryptParams(KDF_INTERACTIVE), { N: 2 ** 14, r: 8, p: 1 });
    // The other branch of pickparams: plenty of memory, few operations.
    assert.deepEqual(scryptParams({ opslimit: 32768, memlimit: 1 << 30 }), { N: 2 ** 10, r: 8, p: 1 });
  });
});

describe('keys and signatures made by the real minisign (fixtures)', () => {
  test('the encrypted key opens with its password, and signs byte for byte what minisign -S signed', async () => {
    const key = await readSecretKey(await fixture('publisher.key'), { password: FIXTURE_PASSWORD, source: 'publisher.key' });
    assert.equal(key.keyId, FIXTURE_KEY_ID);
    assert.equal(key.encrypted, true);
    assert.equal(key.publicKeyLine, (await fixture('publisher.pub')).split('\n')[1]);
    const manifest = await readFile(join(fixtures, 'manifest.json'));
    // Ed25519 is deterministic: the same key, bytes and comments give the same .minisig.
    assert.equal(signMinisign(key, manifest, { fileName: 'manifest.json', trustedComment: FIXTURE_COMMENT }), await fixture('manifest.json.minisig'));
  });

  test('the unencrypted key (minisign -G -W, checksum left zero) opens without a password and signs the same way', async () => {
    const text = await fixture('publisher-plain.key');
    const key = await readSecretKey(text, { source: 'publisher-plain.key' });
    assert.equal(key.encrypted, false);
    assert.equal(parsePublicKey(await fixture('publisher-plain.pub')).keyId, key.keyId);
    const manifest = await readFile(join(fixtures, 'manifest.json'));
    const signature = signMinisign(key, manifest, {
      fileName: 'manifest.json',
      trustedComment: FIXTURE_COMMENT,
      untrustedComment: 'signature from the unencrypted test key',
    });
    assert.equal(signature, await fixture('manifest.json.plain.minisig'));
    // A password given for an unencrypted key is not needed, and harmless.
    assert.equal((await readSecretKey(text, { password: 'unused' })).keyId, key.keyId);
  });

  test('our verifier accepts what minisign -S signed, and refuses the manifest changed by one byte', async () => {
    const publicKey = parsePublicKey(await fixture('publisher.pub'));
    const manifest = await readFile(join(fixtures, 'manifest.json'));
    const signature = parseSignature(await fixture('manifest.json.minisig'), 'manifest.json.minisig');
    assert.equal(verifySignature(publicKey, signature, { bytes: manifest }).trustedComment, FIXTURE_COMMENT);
    const changed = Buffer.from(manifest);
    changed[changed.indexOf('10')] = '9'.charCodeAt(0);
    assert.throws(() => verifySignature(publicKey, signature, { bytes: changed }), /does not match the release/);
  });

  test('a wrong password is a clear error, not garbage', async () => {
    // The same derive, XOR and checksum as the fixture's key, at the cheap cost: the right password
    // above already shows the derivation is minisign's at its default cost (seconds per try).
    const pair = await generateMinisignKeyPair({ password: FIXTURE_PASSWORD, kdf: KDF_INTERACTIVE });
    await rejectsWith(readSecretKey(pair.secretKeyFile, { password: 'Correct horse battery staple', source: 'publisher.key' }), /publisher\.key does not open with this password.*wrong password.*MINISIGN_PASSWORD/);
  });

  test('an encrypted key without a password says where to give it, before any key derivation', async () => {
    await rejectsWith(readSecretKey(await fixture('publisher.key'), { source: 'publisher.key' }), /publisher\.key is encrypted with a password; give its password in the MINISIGN_PASSWORD environment variable or with --password-file/);
    await rejectsWith(readSecretKey(await fixture('publisher.key'), { password: '', source: 'k' }), /is encrypted/);
  });
});

describe('hostile or mistaken secret key files', () => {
  test('each is refused with what is wrong', async () => {
    const plain = await fixture('publisher-plain.key');
    const cases: Array<[string, RegExp]> = [
      [await fixture('publisher.pub'), /is a minisign public key; signing needs the secret key/],
      [await fixture('manifest.json.minisig'), /is a \.minisig signature, not a secret key/],
      ['', /has 0 key lines/],
      ['untrusted comment: x\nnot base64!\n', /not base64/],
      [`${plain}${plain.split('\n')[1]}\n`, /has 2 key lines/],
      [tamper(plain, (bytes) => bytes.write('XX', 0, 'latin1')), /signature algorithm "XX"/],
      [tamper(plain, (bytes) => bytes.write('B3', 4, 'latin1')), /checksum "B3"/],
      [tamper(plain, (bytes) => bytes.write('Ar', 2, 'latin1')), /key derivation "Ar"/],
      ['untrusted comment: x\nRWQAAEIy\n', /decodes to 6 bytes, not the 158/],
      // A corrupted public-key half of an unencrypted key (its checksum is zero, so the pair itself is checked).
      [tamper(plain, (bytes) => void (bytes[158 - 33] = (bytes[158 - 33] as number) ^ 1)), /corrupt: its Ed25519 seed and public key do not belong together/],
      // A checksum that is set but wrong.
      [tamper(plain, (bytes) => void (bytes[158 - 1] = 1)), /corrupt: its checksum does not match/],
    ];
    for (const [text, pattern] of cases) await rejectsWith(readSecretKey(text, { source: 'the key' }), pattern);
  });

  test('scrypt costs beyond what minisign writes are refused at once, not run (memory and time)', async () => {
    const encrypted = await fixture('publisher.key');
    const huge = (offset: number, value: bigint) => tamper(encrypted, (bytes) => bytes.writeBigUInt64LE(value, offset));
    const started = Date.now();
    const both = tamper(encrypted, (bytes) => {
      bytes.writeBigUInt64LE(1n << 40n, 38);
      bytes.writeBigUInt64LE(1n << 40n, 46);
    });
    await rejectsWith(readSecretKey(both, { password: 'x' }), /asks scrypt for N=1073741824.*corrupt or not from minisign/);
    await rejectsWith(readSecretKey(huge(38, 1n << 62n), { password: 'x' }), /asks scrypt for/);
    await rejectsWith(readSecretKey(huge(38, 0xffffffffffffffffn), { password: 'x' }), /asks scrypt for/);
    // Refused before deriving: far under the seconds one derivation at minisign's cost takes.
    assert.ok(Date.now() - started < 60_000);
  });
});

describe('key pairs we make', () => {
  test('encrypted and unencrypted, they open again and sign what our verifier accepts', async () => {
    for (const password of ['pässword with spaces', undefined]) {
      const pair = await generateMinisignKeyPair({ password, kdf: KDF_INTERACTIVE });
      assert.ok(pair.publicKeyFile.startsWith(`untrusted comment: minisign public key ${pair.keyId}\n`));
      assert.equal(parsePublicKey(pair.publicKeyFile).keyId, pair.keyId);
      const key = await readSecretKey(pair.secretKeyFile, { password });
      assert.equal(key.keyId, pair.keyId);
      assert.equal(key.encrypted, password !== undefined);
      const data = randomBytes(1000);
      const signature = parseSignature(signMinisign(key, data, { fileName: 'x', now: new Date(1_800_000_000_000) }));
      assert.equal(signature.trustedComment, 'timestamp:1800000000\tfile:x\thashed');
      verifySignature(parsePublicKey(pair.publicKeyFile), signature, { bytes: data });
      if (password !== undefined) await rejectsWith(readSecretKey(pair.secretKeyFile, { password: 'password with spaces' }), /wrong password/);
    }
  });

  test('comments are one line', () => {
    assert.throws(() => signMinisign({} as never, Buffer.alloc(1), { fileName: 'x', trustedComment: 'a\nb' }), /one line/);
  });
});

describe('the minisign tool', { skip: hasMinisign ? false : 'minisign is not on PATH (apt-get install minisign); the fixtures above still check the formats' }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'overseer-sign-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const minisign = (args: string[], input = '') => spawnSync('minisign', args, { cwd: dir, input, encoding: 'utf8', timeout: 120_000 });

  test('minisign -V accepts what we sign with encrypted and unencrypted keys we made, and minisign -S opens those keys', async () => {
    for (const password of ['test password', undefined]) {
      const pair = await generateMinisignKeyPair({ password, kdf: KDF_INTERACTIVE });
      await writeFile(join(dir, 'ours.pub'), pair.publicKeyFile);
      await writeFile(join(dir, 'ours.key'), pair.secretKeyFile, { mode: 0o600 });
      const data = Buffer.from(`{"schema":"overseer-manifest/1","n":"${randomBytes(8).toString('hex')}"}\n`);
      await writeFile(join(dir, 'm.json'), data);
      const key = await readSecretKey(pair.secretKeyFile, { password });
      await writeFile(join(dir, 'm.json.minisig'), signMinisign(key, data, { fileName: 'm.json', trustedComment: 'file:m.json\tsequence:1' }));
      const verified = minisign(['-V', '-H', '-p', 'ours.pub', '-m', 'm.json']);
      assert.equal(verified.status, 0, verified.stderr);
      assert.match(verified.stdout, /Trusted comment: file:m\.json\tsequence:1/);
      // A byte changed: the tool refuses it too, so the check above can fail.
      await writeFile(join(dir, 'm.json'), Buffer.concat([data, Buffer.from(' ')]));
      assert.notEqual(minisign(['-V', '-p', 'ours.pub', '-m', 'm.json']).status, 0);
      // The tool reads our key file: it decrypts it (checksum and all) and signs with it.
      const signed = minisign(['-S', '-s', 'ours.key', '-m', 'm.json', '-x', 'tool.minisig'], password === undefined ? '' : `${password}\n`);
      assert.equal(signed.status, 0, signed.stderr);
      verifySignature(key.publicKey, parseSignature(await readFile(join(dir, 'tool.minisig'), 'utf8')), { bytes: await readFile(join(dir, 'm.json')) });
      if (password !== undefined) assert.notEqual(minisign(['-S', '-s', 'ours.key', '-m', 'm.json', '-x', 'bad.minisig'], 'wrong\n').status, 0);
    }
  });

  // Unencrypted (-W): an encrypted one costs minisign's default scrypt twice (its -G, our read),
  // about 20 s on a loaded machine, and proves nothing the fixture key above does not: it was made
  // by minisign -G at that cost and opens with our derivation.
  test('a key minisign -G just made opens and signs what minisign -V accepts', async () => {
    const generated = minisign(['-G', '-W', '-p', 'tool.pub', '-s', 'tool.key']);
    assert.equal(generated.status, 0, generated.stderr);
    const key = await readSecretKey(await readFile(join(dir, 'tool.key'), 'utf8'), { source: 'tool.key' });
    assert.equal(key.keyId, parsePublicKey(await readFile(join(dir, 'tool.pub'), 'utf8')).keyId);
    const data = randomBytes(100_000);
    await writeFile(join(dir, 'blob'), data);
    await writeFile(join(dir, 'blob.minisig'), signMinisign(key, data, { fileName: 'blob' }));
    const verified = minisign(['-V', '-H', '-p', 'tool.pub', '-m', 'blob']);
    assert.equal(verified.status, 0, verified.stderr);
    assert.match(verified.stdout, /Trusted comment: timestamp:\d+\tfile:blob\thashed/);
  });
});
