/**
 * `overseer release publish --s3` against a real S3-compatible server (s3rver): the upload order
 * (artifacts, .minisig, manifest), cache headers, artifacts already there skipped, an artifact
 * with other bytes never overwritten, nothing uploaded from an unsigned or broken folder, and an
 * instance (ManifestFetcher over S3) taking what was published.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ManifestFetcher } from '../../fetchers/manifest.ts';
import { parsePublicKey } from '../../src/upgrade/minisign.ts';
import { S3_CREDENTIALS, startS3, type S3Server } from '../../support/s3.ts';
import { cleanupCli, cli, scratch } from '../helpers/cli.ts';

let s3: S3Server;
before(async () => {
  s3 = await startS3('my-releases');
});
after(async () => {
  await s3.close();
  cleanupCli();
});

function release(cwd: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const { MINISIGN_PASSWORD: _ignored, ...inherited } = process.env;
  const env = { ...inherited, AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'release', ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function ok(cwd: string, args: string[]): Promise<string> {
  const run = await release(cwd, args);
  assert.equal(run.status, 0, `overseer release ${args.join(' ')}\n${run.stdout}${run.stderr}`);
  return run.stdout;
}

const publishArgs = (prefix: string) => ['publish', '-m', 'dist/manifest.json', '--s3', `s3://my-releases/${prefix}`, '--endpoint', s3.endpoint, '--force-path-style'];

async function objectText(key: string): Promise<{ body: string; cacheControl: string | undefined }> {
  const object = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  return { body: (await object.Body?.transformToString()) ?? '', cacheControl: object.CacheControl };
}

describe('overseer release publish --s3', () => {
  test('uploads artifacts, then the signature, then the manifest; skips what is there; an instance takes it', async () => {
    const dir = scratch('overseer-publish-');
    fs.mkdirSync(path.join(dir, 'dist', 'builds'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'dist', 'builds', 'app-1.0.0.mjs'), 'export default "1.0.0";\n');
    fs.writeFileSync(path.join(dir, 'dist', 'builds', 'app-1.1.0.mjs'), 'export default "1.1.0";\n');
    await ok(dir, ['keygen', '--unencrypted', '--public-key', 'ci.pub', '--secret-key', 'ci.key']);
    await ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/builds/app-1.0.0.mjs', '--key', 'ci.key']);

    const before = s3.requests.length;
    const first = await ok(dir, [...publishArgs('apps/web'), '--public-key', 'ci.pub']);
    assert.match(first, /s3:\/\/my-releases\/apps\/web\/builds\/app-1\.0\.0\.mjs: uploaded \(24 bytes\)\ns3:\/\/my-releases\/apps\/web\/manifest\.json\.minisig: uploaded\ns3:\/\/my-releases\/apps\/web\/manifest\.json: uploaded/);
    const puts = s3.requests.slice(before).filter((request) => request.method === 'PUT').map((request) => decodeURIComponent(request.url.split('?')[0] ?? ''));
    assert.deepEqual(puts, ['/my-releases/apps/web/builds/app-1.0.0.mjs', '/my-releases/apps/web/manifest.json.minisig', '/my-releases/apps/web/manifest.json']);
    assert.equal((await objectText('apps/web/builds/app-1.0.0.mjs')).cacheControl, 'public, max-age=31536000, immutable');
    const uploaded = await objectText('apps/web/manifest.json');
    assert.equal(uploaded.cacheControl, 'max-age=60');
    assert.equal(uploaded.body, fs.readFileSync(path.join(dir, 'dist', 'manifest.json'), 'utf8'));

    await ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.1.0', 'dist/builds/app-1.1.0.mjs', '--key', 'ci.key']);
    const second = await ok(dir, publishArgs('apps/web'));
    assert.match(second, /app-1\.0\.0\.mjs: already there \(24 bytes\)\n.*app-1\.1\.0\.mjs: uploaded/);

    const fetcher = new ManifestFetcher({
      s3: { bucket: s3.bucket, key: 'apps/web/manifest.json', endpoint: s3.endpoint, forcePathStyle: true, credentials: { ...S3_CREDENTIALS } },
      instanceId: 'host-1',
    });
    try {
      const result = await fetcher.fetch({
        signal: new AbortController().signal,
        currentSha256: '0'.repeat(64),
        currentVersion: '1.0.0',
        publicKeys: [parsePublicKey(fs.readFileSync(path.join(dir, 'ci.pub'), 'utf8'))],
        bundlePath: path.join(dir, 'app.mjs'),
        emit: () => {},
      });
      assert.equal(result.type, 'update');
      assert.equal(result.type === 'update' ? result.release.version : undefined, '1.1.0');
    } finally {
      await fetcher.close();
    }
  });

  test('nothing is uploaded from an unsigned or broken folder, and an artifact with other bytes is never overwritten', async () => {
    const dir = scratch('overseer-publish-');
    fs.mkdirSync(path.join(dir, 'dist'));
    fs.writeFileSync(path.join(dir, 'dist', 'app-1.0.0.mjs'), 'export default "1.0.0";\n');
    await ok(dir, ['keygen', '--unencrypted', '--public-key', 'ci.pub', '--secret-key', 'ci.key']);
    await ok(dir, ['create', '-m', 'dist/manifest.json', '--version', '1.0.0', 'dist/app-1.0.0.mjs']);
    const before = s3.requests.length;
    let run = await release(dir, publishArgs('refused'));
    assert.equal(run.status, 1);
    assert.match(run.stderr, /nothing uploaded: dist\/manifest\.json is not signed \(no dist\/manifest\.json\.minisig\)/);
    await ok(dir, ['sign', '-m', 'dist/manifest.json', '-k', 'ci.key']);
    fs.appendFileSync(path.join(dir, 'dist', 'app-1.0.0.mjs'), '// changed after create\n');
    run = await release(dir, publishArgs('refused'));
    assert.equal(run.status, 1);
    assert.match(run.stderr, /nothing uploaded: stable 1\.0\.0: app-1\.0\.0\.mjs is longer than the 24 bytes the manifest gives/);
    // With --public-key, all of verify runs first: another key's signature is refused too.
    await ok(dir, ['keygen', '--unencrypted', '--public-key', 'other.pub', '--secret-key', 'other.key']);
    run = await release(dir, [...publishArgs('refused'), '--public-key', 'other.pub']);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /nothing uploaded: .*is signed by key [0-9A-F]{16}, which is not among the trusted public keys/);
    assert.equal(s3.requests.slice(before).filter((request) => request.method === 'PUT').length, 0, 'no PUT reached the store');

    // The object is there with other bytes (a different build under the same name): refused.
    fs.writeFileSync(path.join(dir, 'dist', 'app-1.0.0.mjs'), 'export default "1.0.0";\n');
    await s3.put('taken/app-1.0.0.mjs', 'something else entirely\n\n\n');
    run = await release(dir, publishArgs('taken'));
    assert.equal(run.status, 1);
    assert.match(run.stderr, /s3:\/\/my-releases\/taken\/app-1\.0\.0\.mjs exists with 26 bytes but the manifest gives 24 .*bytes never change/);
    assert.equal((await objectText('taken/app-1.0.0.mjs')).body, 'something else entirely\n\n\n');

    for (const [args, pattern] of [
      [['publish', '-m', 'dist/manifest.json', '--s3', 'https://bucket/x'], /--s3 "https:\/\/bucket\/x" is not s3:\/\/BUCKET/],
      [['publish', '-m', 'dist/manifest.json', '--s3', 's3://my-releases/a/../b'], /the prefix has an empty, "\." or "\.\." segment/],
      [['publish', '-m', 'dist/manifest.json', '--s3', 's3://my-releases/', '--endpont', 'x'], /unknown option --endpont \(did you mean --endpoint\?\)/],
    ] as Array<[string[], RegExp]>) {
      run = await release(dir, args);
      assert.equal(run.status, 2, args.join(' '));
      assert.match(run.stderr, pattern);
    }
  });
});
