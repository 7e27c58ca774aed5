import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Release } from '../../src/upgrade/fetcher.ts';
import { Rejections } from '../../src/upgrade/rejections.ts';
import { decideVersion, higher, readVersionFloor, versionFile, writeVersionFloor } from '../../src/upgrade/version-floor.ts';
import { tempDir } from '../helpers/master.ts';

const source = 'http://127.0.0.1/app.mjs';
const code = (call: () => unknown) => {
  try {
    call();
    return 'ok';
  } catch (error) {
    return (error as { code?: string }).code;
  }
};

describe('decideVersion', () => {
  const keyed = { trusted: true, allowDowngrade: false, source };
  const open = { trusted: false, allowDowngrade: false, source };

  test('with a key: the signed version first, then the handshake; none is refused (fail closed)', () => {
    assert.equal(decideVersion({ signed: '2.0.0', handshake: '1.0.0', declared: undefined }, '1.5.0', keyed), '2.0.0');
    assert.equal(decideVersion({ signed: undefined, handshake: '2.0.0', declared: undefined }, '1.5.0', keyed), '2.0.0');
    assert.equal(code(() => decideVersion({ signed: undefined, handshake: null, declared: '9.0.0' }, undefined, keyed)), 'ERR_OVERSEER_VERSION_UNTRUSTED');
    assert.equal(code(() => decideVersion({ signed: '1.0.0', handshake: '3.0.0', declared: undefined }, '1.5.0', keyed)), 'ERR_OVERSEER_DOWNGRADE');
    assert.equal(code(() => decideVersion({ signed: 'banana', handshake: null, declared: undefined }, undefined, keyed)), 'ERR_OVERSEER_CHECK_FAILED');
    assert.equal(decideVersion({ signed: '1.0.0', handshake: null, declared: undefined }, '2.0.0', { ...keyed, allowDowngrade: true }), '1.0.0');
    assert.equal(decideVersion({ signed: undefined, handshake: null, declared: undefined }, '2.0.0', { ...keyed, allowDowngrade: true }), undefined);
  });

  test("without a key: the handshake's version, else the fetcher's semver; none passes as before", () => {
    assert.equal(decideVersion({ signed: '9.0.0', handshake: null, declared: undefined }, '1.0.0', open), undefined, 'an unverified comment is not used');
    assert.equal(decideVersion({ signed: undefined, handshake: null, declared: 'v2.0.0' }, '1.0.0', open), '2.0.0');
    assert.equal(code(() => decideVersion({ signed: undefined, handshake: null, declared: 'v0.9.0' }, '1.0.0', open)), 'ERR_OVERSEER_DOWNGRADE');
    assert.equal(decideVersion({ signed: undefined, handshake: null, declared: 'nightly' }, '1.0.0', open), undefined);
    assert.equal(decideVersion({ signed: undefined, handshake: 'build-7', declared: undefined }, undefined, open), 'build-7');
    assert.equal(code(() => decideVersion({ signed: undefined, handshake: 'build-7', declared: undefined }, '1.0.0', open)), 'ERR_OVERSEER_CHECK_FAILED');
    assert.equal(decideVersion({ signed: undefined, handshake: '1.0.0', declared: undefined }, '1.0.0', open), '1.0.0', 'the same version passes');
  });

  test('higher', () => {
    assert.equal(higher(undefined, '1.0.0'), '1.0.0');
    assert.equal(higher('1.10.0', '1.9.0'), '1.10.0');
    assert.equal(higher('nonsense', '1.0.0'), '1.0.0');
  });
});

describe('the version floor file', () => {
  test('is written atomically beside the bundle and read back; nonsense is ignored with a warning', async () => {
    const dir = tempDir();
    const bundle = path.join(dir, 'app.mjs');
    const warnings: string[] = [];
    assert.equal(await readVersionFloor(bundle, (message) => warnings.push(message)), undefined);
    await writeVersionFloor(bundle, '2.1.0');
    assert.equal(fs.readFileSync(versionFile(bundle), 'utf8'), '2.1.0\n');
    assert.equal(await readVersionFloor(bundle, (message) => warnings.push(message)), '2.1.0');
    assert.deepEqual(fs.readdirSync(dir), ['app.mjs.overseer-version']);
    fs.writeFileSync(versionFile(bundle), 'not a version');
    assert.equal(await readVersionFloor(bundle, (message) => warnings.push(message)), undefined);
    assert.match(warnings.join('\n'), /not a semver version/);
  });

  test('never writes through a planted link, and removes the temps of writers that are gone', async () => {
    const dir = tempDir();
    const bundle = path.join(dir, 'app.mjs');
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'untouched');
    fs.symlinkSync(victim, versionFile(bundle));
    await writeVersionFloor(bundle, '3.0.0');
    assert.equal(fs.readFileSync(victim, 'utf8'), 'untouched');
    assert.ok(!fs.lstatSync(versionFile(bundle)).isSymbolicLink(), 'the link was replaced, not followed');
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    const stale = `${versionFile(bundle)}.${gone}.tmp`;
    const live = `${versionFile(bundle)}.${process.ppid}.tmp`;
    fs.writeFileSync(stale, '1.0.0');
    fs.writeFileSync(live, '1.0.0');
    assert.equal(await readVersionFloor(bundle, () => {}), '3.0.0');
    assert.ok(!fs.existsSync(stale));
    assert.ok(fs.existsSync(live));
  });
});

describe('Rejections', () => {
  const release = (fields: Partial<Release>): Release => ({ source, open: async () => (async function* () {})(), ...fields });

  test('a checksum mismatch is held against the bytes received, never the id or the declared sha256', () => {
    const rejections = new Rejections();
    const declared = 'a'.repeat(64);
    rejections.remember(release({ id: 'e1', sha256: declared }), 'ERR_OVERSEER_CHECKSUM_MISMATCH', { rawSha256: 'b'.repeat(64) });
    assert.equal(rejections.refusedBefore(release({ id: 'e1', sha256: declared })), false);
    assert.equal(rejections.refusedBytes(release({ id: 'e1', sha256: declared }), 'b'.repeat(64)), true);
    assert.equal(rejections.refusedBytes(release({ id: 'e1', sha256: declared }), declared), false);
    assert.equal(rejections.refusedBytes(release({ id: 'e1', sha256: 'b'.repeat(64) }), 'b'.repeat(64)), false, 'a corrected sidecar is tried again');
  });

  test('a refusal is keyed by the signature offered: signed again, tried again', () => {
    const rejections = new Rejections();
    rejections.remember(release({ id: 'e1', signature: 'bad' }), 'ERR_OVERSEER_SIGNATURE_INVALID', { rawSha256: 'c'.repeat(64), sha256: 'c'.repeat(64) });
    assert.equal(rejections.refusedBefore(release({ id: 'e1', signature: 'bad' })), true);
    assert.equal(rejections.refusedBefore(release({ id: 'e1', signature: 'good' })), false);
    assert.equal(rejections.refusedBytes(release({ signature: 'good' }), 'c'.repeat(64)), false);
    rejections.remember(release({ id: 'e2' }), 'ERR_OVERSEER_CHECK_FAILED', { rawSha256: 'd'.repeat(64) });
    assert.equal(rejections.refusedBefore(release({ id: 'e2' })), true);
    assert.equal(rejections.refusedBefore(release({ id: 'e3', sha256: 'D'.repeat(64) })), true, 'the same bytes under another id');
  });
});
