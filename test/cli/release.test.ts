/**
 * `overseer release`, run as the built command: publishing a manifest (create, rollout, pull,
 * unpull, sign), checking it as an instance would (verify), keygen, and every mistake and hostile
 * input a publisher's folder can hold, each refused with the value named.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ManifestFetcher } from '../../fetchers/manifest.ts';
import { cleanupCli, cli, scratch } from '../helpers/cli.ts';
import { readAll } from '../helpers/fetch.ts';
import type { EventBody } from '../../src/events.ts';
import type { FetchResult } from '../../src/upgrade/fetcher.ts';
import { parseManifest, type Manifest } from '../../src/manifest/document.ts';
import { generateMinisignKeyPair, KDF_INTERACTIVE, KDF_SENSITIVE, readSecretKey } from '../../src/manifest/sign.ts';
import { parsePublicKey, parseSignature, verifySignature } from '../../src/upgrade/minisign.ts';

after(cleanupCli);

const hasMinisign = spawnSync('minisign', ['-v'], { encoding: 'utf8' }).error === undefined;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function release(cwd: string, args: string[], env: Record<string, string> = {}): Run {
  const { MINISIGN_PASSWORD: _ignored, ...inherited } = process.env;
  const result = spawnSync(process.execPath, [cli, 'release', ...args], { cwd, env: { ...inherited, ...env }, encoding: 'utf8', timeout: 180_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function ok(cwd: string, args: string[], env: Record<string, string> = {}): Run {
  const run = release(cwd, args, env);
  assert.equal(run.status, 0, `overseer release ${args.join(' ')}\n${run.stdout}${run.stderr}`);
  return run;
}

function manifestAt(file: string): Manifest {
  return parseManifest(fs.readFileSync(file, 'utf8'), file);
}

/** A publisher's folder: dist/ with two artifacts, and an unencrypted key pair beside it. */
function publisher(): { dir: string; dist: string; manifest: string } {
  const dir = scratch('overseer-release-');
  const dist = path.join(dir, 'dist');
  fs.mkdirSync(dist);
  fs.writeFileSync(path.join(dist, 'app-1.0.0.mjs'), 'export const version = "1.0.0";\n');
  fs.writeFileSync(path.join(dist, 'app-1.1.0.mjs'), 'export const version = "1.1.0"; // newer\n');
  ok(dir, ['keygen', '--unencrypted', '--public-key', 'ci.pub', '--secret-key', 'ci.key']);
  return { dir, dist, manifest: path.join(dist, 'manifest.json') };
}

function signatureValid(manifestPath: string, publicKeyPath: string): boolean {
  try {
    verifySignature(
      parsePublicKey(fs.readFileSync(publicKeyPath, 'utf8')),
      parseSignature(fs.readFileSync(`${manifestPath}.minisig`, 'utf8')),
      { bytes: fs.readFileSync(manifestPath) },
    );
    return true;
  } catch {
    return false;
  }
}

describe('overseer release: publishing', () => {
  test('create, rollout, pull, unpull: every write raises sequence, sets expires, replaces the file whole and drops the stale signature', () => {
    const { dir, dist, manifest } = publisher();
    const created = ok(dir, ['create', '--manifest', 'dist/manifest.json', '--version', '1.0.0', 'dist/app-1.0.0.mjs', '--key', 'ci.key', '--expires', '2d']);
    assert.match(created.stdout, /added 1\.0\.0 to channel stable: app-1\.0\.0\.mjs \(32 bytes, sha256 [0-9a-f]{12}…\), rollout 100 %/);
    assert.match(created.stdout, /signed with key [0-9A-F]{16}: dist\/manifest\.json\.minisig/);
    let current = manifestAt(manifest);
    assert.equal(current.sequence, 1);
    const expires = Date.parse(current.expires);
    assert.ok(Math.abs(expires - (Date.now() + 2 * 86_400_000)) < 600_000, `expires ${current.expires} is about two days away`);
    const entry = current.channels['stable']?.releases[0];
    assert.deepEqual(entry, {
      version: '1.0.0',
      path: 'app-1.0.0.mjs',
      size: 32,
      sha256: sha256Of(path.join(dist, 'app-1.0.0.mjs')),
      rollout: 100,
      pulled: false,
    });
    assert.ok(signatureValid(manifest, path.join(dir, 'ci.pub')));

    // A write without --key: the old signature no longer matches, so it goes, and the output says so.
    const added = ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.1.0', '--rollout', '10', '--channel', 'beta', 'dist/app-1.1.0.mjs']);
    assert.match(added.stdout, /removed dist\/manifest\.json\.minisig: it signed the previous manifest\. Not signed: sign it with `overseer release sign/);
    assert.equal(fs.existsSync(`${manifest}.minisig`), false);
    current = manifestAt(manifest);
    assert.equal(current.sequence, 2);
    assert.equal(current.channels['beta']?.releases[0]?.rollout, 10);

    assert.match(ok(dir, ['rollout', '-m', 'dist/manifest.json', '1.1.0', '50%']).stdout, /1\.1\.0 in channel beta: rollout 10 % → 50 %/);
    assert.equal(manifestAt(manifest).channels['beta']?.releases[0]?.rollout, 50);
    // The same version in two channels: pull takes it out of both; rollout must be told which.
    ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.1.0', '--rollout', '5', 'dist/app-1.1.0.mjs']);
    const ambiguous = release(dir, ['rollout', '-m', 'dist/manifest.json', '1.1.0', '20']);
    assert.equal(ambiguous.status, 2);
    assert.match(ambiguous.stderr, /1\.1\.0 is in channels beta, stable; say which with --channel/);
    const pulled = ok(dir, ['pull', '-m', 'dist/manifest.json', '1.1.0', '--key', 'ci.key']);
    assert.match(pulled.stdout, /pulled 1\.1\.0 in channel beta[^\n]*\npulled 1\.1\.0 in channel stable/);
    current = manifestAt(manifest);
    assert.equal(current.sequence, 5);
    assert.equal(current.channels['beta']?.releases[0]?.pulled, true);
    assert.equal(current.channels['stable']?.releases.find((each) => each.version === '1.1.0')?.pulled, true);
    assert.ok(signatureValid(manifest, path.join(dir, 'ci.pub')));
    ok(dir, ['unpull', '-m', 'dist/manifest.json', '1.1.0', '--channel', 'stable']);
    current = manifestAt(manifest);
    assert.equal(current.sequence, 6);
    assert.equal(current.channels['stable']?.releases.find((each) => each.version === '1.1.0')?.pulled, false);
    assert.equal(current.channels['beta']?.releases[0]?.pulled, true);

    // Same bytes again: only the rollout changes. Other bytes for a published version: refused.
    assert.match(ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', '--rollout', '30', 'dist/app-1.0.0.mjs']).stdout, /unchanged \(same bytes\); rollout 100 % → 30 %/);
    const before = fs.readFileSync(manifest);
    const replaced = release(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/app-1.1.0.mjs']);
    assert.equal(replaced.status, 1);
    assert.match(replaced.stderr, /version 1\.0\.0 is already in channel stable with other bytes.*--replace/);
    assert.deepEqual(fs.readFileSync(manifest), before);

    assert.match(ok(dir, ['show', '-m', 'dist/manifest.json']).stdout, /sequence 7[^\n]*\nchannel beta:\n {2}1\.1\.0 +pulled +app-1\.1\.0\.mjs[^\n]*\nchannel stable:\n {2}1\.1\.0 +5 % [^\n]*\n {2}1\.0\.0 +30 % /);
    ok(dir, ['sign', '-m', 'dist/manifest.json', '-k', 'ci.key']);
    const verified = ok(dir, ['verify', '-m', 'dist/manifest.json', '--public-key', 'ci.pub']);
    assert.match(verified.stdout, /instances will accept it/);
    // No temporary file is left beside the manifest.
    assert.deepEqual(fs.readdirSync(dist).sort(), ['app-1.0.0.mjs', 'app-1.1.0.mjs', 'manifest.json', 'manifest.json.minisig']);
  });

  test('keygen encrypts at minisign\'s default scrypt cost; an encrypted key signs with its password file; a wrong password changes nothing', async () => {
    const { dir, manifest } = publisher();
    const password = { MINISIGN_PASSWORD: 'a test password' };
    const made = ok(dir, ['keygen', '--public-key', 'release.pub', '--secret-key', 'release.key'], password);
    assert.match(made.stdout, /key [0-9A-F]{16}: secret key release\.key \(encrypted with the password, mode 0600\), public key release\.pub/);
    assert.equal(fs.statSync(path.join(dir, 'release.key')).mode & 0o777, 0o600);
    const header = Buffer.from(fs.readFileSync(path.join(dir, 'release.key'), 'utf8').split('\n')[1] ?? '', 'base64');
    assert.equal(header.toString('latin1', 2, 4), 'Sc');
    // minisign's default cost (opslimit, memlimit after the 32-byte salt): the one derivation here at that cost.
    assert.deepEqual({ opslimit: Number(header.readBigUInt64LE(38)), memlimit: Number(header.readBigUInt64LE(46)) }, KDF_SENSITIVE);

    ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/app-1.0.0.mjs']);
    const before = fs.readFileSync(manifest);
    // Opening the key takes the same path at any cost (test/manifest/sign.test.ts opens minisign's
    // own key at its default cost): shown on a cheap key, not a second few-second derivation.
    const cheap = await generateMinisignKeyPair({ password: 'a test password', kdf: KDF_INTERACTIVE });
    fs.writeFileSync(path.join(dir, 'cheap.key'), cheap.secretKeyFile, { mode: 0o600 });
    const wrong = release(dir, ['rollout', '-m', 'dist/manifest.json', '1.0.0', '50', '--key', 'cheap.key'], { MINISIGN_PASSWORD: 'not the password' });
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /^overseer: the secret key cheap\.key does not open with this password .*wrong password/);
    assert.deepEqual(fs.readFileSync(manifest), before, 'a wrong password leaves the manifest as it was');
    const none = release(dir, ['sign', '-m', 'dist/manifest.json', '--key', 'release.key']);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /release\.key is encrypted with a password; give its password in the MINISIGN_PASSWORD environment variable or with --password-file/);

    fs.writeFileSync(path.join(dir, 'password.txt'), 'a test password\n');
    fs.writeFileSync(path.join(dir, 'cheap.pub'), cheap.publicKeyFile);
    ok(dir, ['sign', '-m', 'dist/manifest.json', '--key', 'cheap.key', '--password-file', 'password.txt']);
    assert.ok(signatureValid(manifest, path.join(dir, 'cheap.pub')));
    if (hasMinisign) {
      const tool = spawnSync('minisign', ['-V', '-H', '-p', 'cheap.pub', '-m', 'dist/manifest.json'], { cwd: dir, encoding: 'utf8' });
      assert.equal(tool.status, 0, tool.stderr);
      assert.match(tool.stdout, /Trusted comment: timestamp:\d+\tfile:manifest\.json\tsequence:1\thashed/);
    }
  });

  test('two publishers writing at once: the manifest lock keeps both edits', async () => {
    const { dir, manifest } = publisher();
    ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/app-1.0.0.mjs']);
    const { MINISIGN_PASSWORD: _ignored, ...env } = process.env;
    const runAsync = (args: string[]) =>
      new Promise<number | null>((resolve, reject) => {
        const child = spawn(process.execPath, [cli, 'release', ...args], { cwd: dir, env, stdio: 'ignore' });
        child.once('error', reject);
        child.once('exit', (code) => resolve(code));
      });
    const codes = await Promise.all([
      runAsync(['create', '-m', 'dist/manifest.json', '--version', '1.1.0', '--channel', 'beta', 'dist/app-1.1.0.mjs', '--key', 'ci.key']),
      runAsync(['rollout', '-m', 'dist/manifest.json', '1.0.0', '40', '--key', 'ci.key']),
      runAsync(['create', '-m', 'dist/manifest.json', '--version', '1.1.0', '--rollout', '5', 'dist/app-1.1.0.mjs', '--key', 'ci.key']),
    ]);
    assert.deepEqual(codes, [0, 0, 0]);
    const after = manifestAt(manifest);
    assert.equal(after.sequence, 4);
    assert.equal(after.channels['beta']?.releases[0]?.version, '1.1.0');
    assert.deepEqual(after.channels['stable']?.releases.map((each) => [each.version, each.rollout]), [['1.0.0', 40], ['1.1.0', 5]]);
    assert.ok(signatureValid(manifest, path.join(dir, 'ci.pub')), 'the signature is of the last write');
    assert.equal(fs.existsSync(`${manifest}.lock`), false);
  });

  test('keygen refuses to overwrite, and needs a password or --unencrypted', async () => {
    const { dir } = publisher();
    const again = release(dir, ['keygen', '--unencrypted', '--public-key', 'other.pub', '--secret-key', 'ci.key']);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /ci\.key already exists; keygen does not overwrite a key \(pass --force/);
    assert.equal(fs.existsSync(path.join(dir, 'other.pub')), false);
    const bare = release(dir, ['keygen', '--public-key', 'n.pub', '--secret-key', 'n.key']);
    assert.equal(bare.status, 2);
    assert.match(bare.stderr, /needs a password to encrypt the secret key: put it in \$MINISIGN_PASSWORD or a --password-file, or pass --unencrypted/);
    const both = release(dir, ['keygen', '--unencrypted', '--public-key', 'n.pub', '--secret-key', 'n.key'], { MINISIGN_PASSWORD: 'x' });
    assert.equal(both.status, 2);
    assert.match(both.stderr, /--unencrypted and a password \(\$MINISIGN_PASSWORD\) contradict each other/);
    const old = fs.readFileSync(path.join(dir, 'ci.key'), 'utf8');
    ok(dir, ['keygen', '--unencrypted', '--force', '--public-key', 'ci.pub', '--secret-key', 'ci.key']);
    assert.notEqual(fs.readFileSync(path.join(dir, 'ci.key'), 'utf8'), old);
    assert.equal((await readSecretKey(fs.readFileSync(path.join(dir, 'ci.key'), 'utf8'))).encrypted, false);
  });
});

describe('overseer release: bad input', () => {
  test('artifacts outside the manifest\'s folder are refused: .., an absolute path, a symlink leading out', () => {
    const { dir } = publisher();
    fs.writeFileSync(path.join(dir, 'outside.mjs'), 'x\n');
    fs.symlinkSync(path.join(dir, 'outside.mjs'), path.join(dir, 'dist', 'link.mjs'));
    for (const artifact of ['outside.mjs', 'dist/../outside.mjs', path.join(dir, 'outside.mjs'), 'dist/link.mjs', '/etc/hostname']) {
      const run = release(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', artifact]);
      assert.equal(run.status, 1, artifact);
      assert.match(run.stderr, /is outside the manifest's folder .*copy it into that folder first|does not exist/, artifact);
      assert.equal(fs.existsSync(path.join(dir, 'dist', 'manifest.json')), false, 'nothing was written');
    }
    fs.writeFileSync(path.join(dir, 'dist', 'app 1.mjs'), 'x\n');
    assert.match(release(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/app 1.mjs']).stderr, /the artifact path "app 1\.mjs" cannot go into a manifest: segment "app 1\.mjs" holds a character/);
    fs.writeFileSync(path.join(dir, 'dist', 'empty.mjs'), '');
    assert.match(release(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/empty.mjs']).stderr, /the artifact dist\/empty\.mjs is empty/);
    assert.match(release(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist']).stderr, /is outside the manifest's folder|is not a regular file/);
    assert.match(release(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/nope.mjs']).stderr, /the artifact dist\/nope\.mjs does not exist/);
    assert.match(release(dir, ['create', '-m', 'nowhere/manifest.json', '--version', '1.0.0', 'dist/app-1.0.0.mjs']).stderr, /the manifest's folder nowhere does not exist/);
    ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/app-1.0.0.mjs']);
    assert.match(release(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.2.0', 'dist/manifest.json']).stderr, /is the manifest or its signature/);
  });

  test('bad flag values are usage errors (exit 2) naming the value; unknown commands and flags get a did-you-mean', () => {
    const { dir } = publisher();
    ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/app-1.0.0.mjs']);
    const cases: Array<[string[], RegExp]> = [
      [['creat'], /unknown release command "creat" \(did you mean create\?\)/],
      [['create', '--manfest', 'x'], /release create: unknown option --manfest \(did you mean --manifest\?\)/],
      [['rollout', '-m', 'dist/manifest.json', '1.0.0', '50', '--chanel', 'beta'], /unknown option --chanel \(did you mean --channel\?\)/],
      [['create', '-m', 'dist/manifest.json', '--version', 'v1.2.0', 'dist/app-1.1.0.mjs'], /version "v1\.2\.0" is not a semver version such as "1\.4\.0" \(did you mean 1\.2\.0\?\)/],
      [['create', '-m', 'dist/manifest.json', '--version', '1.2.0', '--rollout', '101', 'dist/app-1.1.0.mjs'], /rollout "101" is not a percentage from 0 to 100/],
      [['create', '-m', 'dist/manifest.json', '--version', '1.2.0', '--channel', 'Beta!', 'dist/app-1.1.0.mjs'], /channel "Beta!" is not a channel name/],
      [['create', '-m', 'dist/manifest.json', '--version', '1.2.0', '--expires', '3x', 'dist/app-1.1.0.mjs'], /--expires "3x" is neither a duration nor a time/],
      [['create', '-m', 'dist/manifest.json', '--version', '1.2.0', '--expires', '2020-01-01', 'dist/app-1.1.0.mjs'], /--expires "2020-01-01" is in the past/],
      [['create', '-m', 'dist/manifest.json', '--version', '1.2.0', '--expires', '2030-02-30', 'dist/app-1.1.0.mjs'], /--expires "2030-02-30" is not a real date/],
      [['create', '-m', 'dist/manifest.json', '--version', '1.2.0', '--expires', '2030-01-01T10:00', 'dist/app-1.1.0.mjs'], /has no time zone \(add Z for UTC\)/],
      [['create', '-m', 'dist/manifest.json', '--version', '1.2.0'], /release create takes one ARTIFACT/],
      [['create', '--version', '1.2.0', 'dist/app-1.1.0.mjs'], /release create needs --manifest/],
      [['rollout', '-m', 'dist/manifest.json', '1.0.0'], /release rollout takes VERSION PERCENT/],
      [['rollout', '-m', 'dist/manifest.json', '1.0.0', 'half'], /rollout "half" is not a percentage/],
      [['sign', '-m', 'dist/manifest.json'], /release sign needs --key/],
      [['verify', '-m', 'dist/manifest.json'], /release verify needs --public-key/],
      [['verify', '-m', 'dist/manifest.json', '--public-key', 'ci.key'], /holds a minisign secret key; configure the public key/],
      [['pull', '-m', 'dist/manifest.json', '1.0.0', '--password-file', 'p'], /--password-file is for the secret key; pass --key too/],
    ];
    for (const [args, pattern] of cases) {
      const run = release(dir, args);
      assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, pattern, args.join(' '));
      assert.match(run.stderr, /\nsee `overseer release --help`\n$/, args.join(' '));
    }
    // Edits the manifest does not allow: exit 1, the manifest unchanged.
    const before = fs.readFileSync(path.join(dir, 'dist', 'manifest.json'));
    for (const [args, pattern] of [
      [['pull', '-m', 'dist/manifest.json', '9.9.9'], /no channel of the manifest has release 9\.9\.9 \(stable: 1\.0\.0\)/],
      [['rollout', '-m', 'dist/manifest.json', '1.0.0', '5', '--channel', 'beta'], /the manifest has no channel beta; it has stable/],
      [['rollout', '-m', 'dist/nothing.json', '1.0.0', '5'], /there is no manifest at dist\/nothing\.json; make one with `overseer release create/],
      [['sign', '-m', 'dist/manifest.json', '--key', 'ci.pub'], /the secret key ci\.pub is a minisign public key; signing needs the secret key/],
      [['sign', '-m', 'dist/manifest.json', '--key', 'missing.key'], /the secret key missing\.key cannot be read \(ENOENT\)/],
    ] as Array<[string[], RegExp]>) {
      const run = release(dir, args);
      assert.equal(run.status, 1, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, pattern, args.join(' '));
    }
    assert.deepEqual(fs.readFileSync(path.join(dir, 'dist', 'manifest.json')), before);
    assert.match(release(dir, ['--help']).stdout, /^usage: overseer release create/);
    assert.match(spawnSync(process.execPath, [cli, 'relase'], { encoding: 'utf8' }).stderr, /unknown command "relase" \(did you mean release\?\)/);
  });

  test('a manifest that does not parse is neither edited nor signed, and the error names the field', () => {
    const { dir, manifest } = publisher();
    ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/app-1.0.0.mjs']);
    const text = fs.readFileSync(manifest, 'utf8');
    fs.writeFileSync(manifest, text.replace('"rollout"', '"rolout"'));
    for (const args of [['rollout', '-m', 'dist/manifest.json', '1.0.0', '5'], ['sign', '-m', 'dist/manifest.json', '-k', 'ci.key']]) {
      const run = release(dir, args);
      assert.equal(run.status, 1);
      assert.match(run.stderr, /channels\.stable\.releases\[0\]\.rolout is not a field of overseer-manifest\/1/);
    }
    assert.equal(fs.existsSync(`${manifest}.minisig`), false);
  });
});

describe('overseer release verify: what an instance would refuse', () => {
  test('a good manifest passes; each tampering is found and named, all of them in one run', () => {
    const { dir, dist, manifest } = publisher();
    ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/app-1.0.0.mjs']);
    ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.1.0', 'dist/app-1.1.0.mjs', '--key', 'ci.key']);
    assert.equal(release(dir, ['verify', '-m', 'dist/manifest.json', '--public-key', 'ci.pub']).status, 0);
    const verify = (...keys: string[]) => release(dir, ['verify', '-m', 'dist/manifest.json', ...keys.flatMap((key) => ['--public-key', key])]);

    // Key rotation: a second key pair; signed by the new key, instances trusting both accept it.
    ok(dir, ['keygen', '--unencrypted', '--public-key', 'new.pub', '--secret-key', 'new.key']);
    ok(dir, ['sign', '-m', 'dist/manifest.json', '-k', 'new.key']);
    assert.equal(verify('ci.pub', 'new.pub').status, 0);
    // The base64 line alone works as --public-key too.
    assert.equal(verify((fs.readFileSync(path.join(dir, 'new.pub'), 'utf8').split('\n')[1] ?? '').trim()).status, 0);
    const oldOnly = verify('ci.pub');
    assert.equal(oldOnly.status, 1);
    assert.match(oldOnly.stdout, /PROBLEM {2}dist\/manifest\.json\.minisig is signed by key [0-9A-F]{16}, which is not among the trusted public keys \([0-9A-F]{16}\)/);

    // The artifacts: one byte changed (same size), longer, missing, a link leading out.
    const app10 = path.join(dist, 'app-1.0.0.mjs');
    const original = fs.readFileSync(app10);
    fs.writeFileSync(app10, Buffer.from(original.toString().replace('1.0.0', '1.0.1')));
    fs.appendFileSync(path.join(dist, 'app-1.1.0.mjs'), 'endless data…');
    let run = verify('new.pub');
    assert.equal(run.status, 1);
    assert.match(run.stdout, /PROBLEM {2}stable 1\.0\.0: app-1\.0\.0\.mjs: sha256 [0-9a-f]{64} differs from the manifest's [0-9a-f]{64}/);
    assert.match(run.stdout, /PROBLEM {2}stable 1\.1\.0: app-1\.1\.0\.mjs is longer than the \d+ bytes the manifest gives/);
    assert.match(run.stdout, /instances would refuse it \(2 problems\)/);
    fs.rmSync(app10);
    fs.writeFileSync(path.join(dir, 'elsewhere.mjs'), original);
    fs.rmSync(path.join(dist, 'app-1.1.0.mjs'));
    fs.symlinkSync(path.join(dir, 'elsewhere.mjs'), path.join(dist, 'app-1.1.0.mjs'));
    run = verify('new.pub');
    assert.match(run.stdout, /PROBLEM {2}stable 1\.0\.0: app-1\.0\.0\.mjs is missing/);
    assert.match(run.stdout, /PROBLEM {2}stable 1\.1\.0: app-1\.1\.0\.mjs is a link to .*elsewhere\.mjs, outside the manifest's folder/);
    fs.writeFileSync(app10, original.subarray(0, 10));
    assert.match(verify('new.pub').stdout, /app-1\.0\.0\.mjs is 10 bytes, not the 32 the manifest gives/);

    // The manifest changed after signing (a rollout raised by hand): the signature fails.
    fs.writeFileSync(manifest, fs.readFileSync(manifest, 'utf8').replace('"rollout": 100', '"rollout": 99'));
    assert.match(verify('new.pub').stdout, /PROBLEM {2}dist\/manifest\.json\.minisig \(key id [0-9A-F]{16}\) does not match the release/);
    fs.rmSync(`${manifest}.minisig`);
    assert.match(verify('new.pub').stdout, /PROBLEM {2}no signature: dist\/manifest\.json\.minisig does not exist/);
    fs.writeFileSync(manifest, '{"schema": "overseer-manifest/2"}');
    run = verify('new.pub');
    assert.equal(run.status, 1);
    assert.match(run.stdout, /PROBLEM {2}the manifest dist\/manifest\.json: schema is "overseer-manifest\/2", a schema this overseer does not read/);
    // Huge files in place of the manifest or its signature are not read whole.
    fs.writeFileSync(`${manifest}.minisig`, Buffer.alloc(1024 * 1024, 'a'));
    assert.match(verify('new.pub').stdout, /PROBLEM {2}dist\/manifest\.json\.minisig: is \d+ characters long, far more than a \.minisig file/);
    fs.writeFileSync(manifest, Buffer.alloc(2 * 1024 * 1024, ' '));
    assert.match(verify('new.pub').stdout, /PROBLEM {2}dist\/manifest\.json is 2097152 bytes, more than the 1048576 an instance reads/);
  });

  test('an expired manifest is refused, and one about to expire warned of', () => {
    const { dir, manifest } = publisher();
    ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/app-1.0.0.mjs', '--expires', '1d', '--key', 'ci.key']);
    const soon = ok(dir, ['verify', '-m', 'dist/manifest.json', '--public-key', 'ci.pub']);
    assert.match(soon.stdout, /warning {2}expires \S+, in less than 3 days/);
    // Written by hand with a past expires and signed: the signature is good, the manifest still refused.
    fs.writeFileSync(manifest, fs.readFileSync(manifest, 'utf8').replace(/"expires": "[^"]+"/, '"expires": "2020-01-01T00:00:00Z"'));
    ok(dir, ['sign', '-m', 'dist/manifest.json', '-k', 'ci.key']);
    const run = release(dir, ['verify', '-m', 'dist/manifest.json', '--public-key', 'ci.pub']);
    assert.equal(run.status, 1);
    assert.match(run.stdout, /ok {7}signature: good/);
    assert.match(run.stdout, /PROBLEM {2}expired at 2020-01-01T00:00:00Z: instances refuse it/);
    assert.match(ok(dir, ['show', '-m', 'dist/manifest.json']).stdout, /expires 2020-01-01T00:00:00Z \(EXPIRED\)/);
    // renew changes nothing but sequence and expires (what a scheduled job runs); any other write sets a fresh expires too.
    const { sequence, channels } = manifestAt(manifest);
    assert.match(ok(dir, ['renew', '-m', 'dist/manifest.json', '--expires', '10d', '--key', 'ci.key']).stdout, /renewed \(was sequence \d+, expires 2020-01-01T00:00:00Z\)/);
    const renewed = manifestAt(manifest);
    assert.equal(renewed.sequence, sequence + 1);
    assert.deepEqual(renewed.channels, channels);
    assert.ok(Date.parse(renewed.expires) > Date.now() + 9 * 86_400_000);
    assert.equal(release(dir, ['verify', '-m', 'dist/manifest.json', '--public-key', 'ci.pub']).status, 0);
    ok(dir, ['rollout', '-m', 'dist/manifest.json', '1.0.0', '100', '--key', 'ci.key']);
    assert.equal(release(dir, ['verify', '-m', 'dist/manifest.json', '--public-key', 'ci.pub']).status, 0);
  });
});

describe('overseer release and an instance', () => {
  test('an instance (ManifestFetcher over the folder) takes what overseer release publishes, follows a rollout and a pull', async () => {
    const { dir, dist, manifest } = publisher();
    fs.mkdirSync(path.join(dist, 'builds'));
    fs.renameSync(path.join(dist, 'app-1.1.0.mjs'), path.join(dist, 'builds', 'app-1.1.0.mjs'));
    ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/app-1.0.0.mjs', '--key', 'ci.key']);
    ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.1.0', '--rollout', '0', 'dist/builds/app-1.1.0.mjs', '--key', 'ci.key']);
    const fetcher = new ManifestFetcher({ file: { path: manifest }, instanceId: 'host-1' });
    const events: EventBody[] = [];
    const poll = (currentVersion: string): Promise<FetchResult> =>
      fetcher.fetch({
        signal: new AbortController().signal,
        currentSha256: '0'.repeat(64),
        currentVersion,
        publicKeys: [parsePublicKey(fs.readFileSync(path.join(dir, 'ci.pub'), 'utf8'))],
        bundlePath: path.join(dir, 'app.mjs'),
        emit: (event) => events.push(event),
      });
    try {
      const offered = async (currentVersion: string) => {
        const result = await poll(currentVersion);
        return result.type === 'update' ? result.release : undefined;
      };
      // Rolled out to 0 %: the instance is offered 1.0.0 only.
      assert.equal((await offered('0.9.0'))?.version, '1.0.0');
      ok(dir, ['rollout', '-m', 'dist/manifest.json', '1.1.0', '100', '--key', 'ci.key']);
      const release = await offered('1.0.0');
      assert.equal(release?.version, '1.1.0');
      assert.equal(release?.sha256, sha256Of(path.join(dist, 'builds', 'app-1.1.0.mjs')));
      assert.deepEqual(await readAll(await (release as NonNullable<typeof release>).open(new AbortController().signal)), fs.readFileSync(path.join(dist, 'builds', 'app-1.1.0.mjs')));
      // Pulled: an instance running 1.1.0 is sent back to 1.0.0, the sanctioned downgrade.
      ok(dir, ['pull', '-m', 'dist/manifest.json', '1.1.0', '--key', 'ci.key']);
      const back = await offered('1.1.0');
      assert.equal(back?.version, '1.0.0');
      assert.equal(back?.manifest?.downgrade, true);
      // Written without --key: the stale signature is gone, and the instance takes nothing from the unsigned manifest.
      ok(dir, ['unpull', '-m', 'dist/manifest.json', '1.1.0']);
      await assert.rejects(poll('1.0.0'), /manifest\.json\.minisig/);
      // Signed again: taken again.
      ok(dir, ['sign', '-m', 'dist/manifest.json', '--key', 'ci.key']);
      assert.equal((await offered('1.0.0'))?.version, '1.1.0');
      assert.ok(events.some((event) => event.type === 'manifest-accepted'));
    } finally {
      await fetcher.close();
    }
  });
});

function sha256Of(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}
