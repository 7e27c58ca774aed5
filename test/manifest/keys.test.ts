import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { normalizeConfig } from '../../src/core/config.ts';
import type { StagedRelease } from '../../src/upgrade/bundle.ts';
import { verifyDeclared, verifyIntegrity } from '../../src/upgrade/verify.ts';
import { createMinisignKey } from '../../support/minisign.ts';

const program = () => {};
const oldKey = createMinisignKey();
const newKey = createMinisignKey();
const strangerKey = createMinisignKey();
const bytes = Buffer.from('release bytes');
const staged = {
  tempPath: '/nowhere', sha256: 'x', rawSha256: createHash('sha256').update(bytes).digest('hex'), rawBlake2b512: createHash('blake2b512').update(bytes).digest(),
  bytes: bytes.length, rawBytes: bytes.length, targetPath: '/nowhere',
} as StagedRelease;
const open = async () => (async function* () {})();

test('verify.publicKey takes several keys: a release signed by either verifies, a stranger is refused naming the trusted ids', () => {
  const { verify } = normalizeConfig({ program, verify: { publicKey: [oldKey.publicKeyFile, newKey.publicKey] } });
  assert.equal(verify.publicKeys?.length, 2);
  assert.equal(verify.publicKey?.keyId, oldKey.keyId);
  for (const key of [oldKey, newKey]) {
    const signature = key.sign(bytes, 'version:1.2.0');
    assert.equal(verifyIntegrity(staged, { source: 's', signature, open }, verify).signedVersion, '1.2.0');
  }
  assert.throws(() => verifyIntegrity(staged, { source: 's', signature: strangerKey.sign(bytes), open }, verify), {
    code: 'ERR_OVERSEER_SIGNATURE_INVALID',
    message: new RegExp(`none of the 2 keys of verify.publicKey \\(${oldKey.keyId}, ${newKey.keyId}\\)`),
  });
  assert.throws(() => normalizeConfig({ program, verify: { publicKey: [oldKey.publicKey, 'nonsense'] } }), { code: 'ERR_OVERSEER_INVALID_CONFIG', message: /verify\.publicKey\[1\]/ });
  assert.throws(() => normalizeConfig({ program, verify: { publicKey: [] } }), { code: 'ERR_OVERSEER_INVALID_CONFIG' });
});

test('a release bound by a verified manifest needs no signature of its own, and its manifest version is trusted', () => {
  const { verify } = normalizeConfig({ program, verify: { publicKey: oldKey.publicKey } });
  const bound = { source: 's', sha256: staged.rawSha256, manifest: { version: '2.0.0', sequence: 3, downgrade: false }, open };
  verifyDeclared(bound, verify);
  assert.equal(verifyIntegrity(staged, bound, verify).signedVersion, '2.0.0');
  assert.throws(() => verifyIntegrity(staged, { ...bound, sha256: '0'.repeat(64) }, verify), { code: 'ERR_OVERSEER_CHECKSUM_MISMATCH' });
  assert.throws(() => verifyDeclared({ source: 's', open }, verify), { code: 'ERR_OVERSEER_SIGNATURE_MISSING' });
});
