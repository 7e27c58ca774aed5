/**
 * FileFetcher and the sidecars docs/signing.md tells publishers to put beside a release:
 * `<path>.minisig` and `<path>.sha256` are read when the master's verification wants them,
 * a missing one is none, and nothing is read when nothing is wanted.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FileFetcher } from '../../fetchers/file.ts';
import { isOverseerError } from '../../src/errors.ts';
import type { FetchContext, ReleaseWants } from '../../src/upgrade/fetcher.ts';
import { releaseOf } from '../helpers/fetch.ts';

const context = (wants?: ReleaseWants): FetchContext => ({
  signal: new AbortController().signal, currentSha256: '0'.repeat(64), currentVersion: undefined, ...(wants ? { wants } : {}),
});
const SIGNATURE = 'untrusted comment: signature\nRUQ...\ntrusted comment: version:2.0.0\nabc\n';

function release(): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-file-sidecars-'));
  const file = path.join(dir, 'app.mjs');
  fs.writeFileSync(file, 'release 2');
  return { dir, file };
}

test('with a signature and a sha256 wanted, <path>.minisig and <path>.sha256 are read', async () => {
  const { dir, file } = release();
  try {
    fs.writeFileSync(`${file}.minisig`, SIGNATURE);
    fs.writeFileSync(`${file}.sha256`, `${createHash('sha256').update('release 2').digest('hex')}  app.mjs\n`);
    const found = releaseOf(await new FileFetcher({ path: file }).fetch(context({ signature: true, sha256: true })));
    assert.equal(found.signature, SIGNATURE);
    assert.equal(found.sha256, createHash('sha256').update('release 2').digest('hex'));
    const plain = releaseOf(await new FileFetcher({ path: file }).fetch(context({ signature: false, sha256: false })));
    assert.equal(plain.signature, undefined, 'not wanted, not read');
    assert.equal(plain.sha256, undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing sidecar is none; one that cannot be read (a folder) or is empty fails the poll', async () => {
  const { dir, file } = release();
  try {
    const found = releaseOf(await new FileFetcher({ path: file }).fetch(context({ signature: true, sha256: true })));
    assert.equal(found.signature, undefined);
    assert.equal(found.sha256, undefined);
    fs.mkdirSync(`${file}.minisig`);
    await assert.rejects(new FileFetcher({ path: file }).fetch(context({ signature: true, sha256: false })), (error) => {
      assert.ok(isOverseerError(error, 'ERR_OVERSEER_FETCH_FAILED'));
      assert.ok(error.message.includes(`${file}.minisig`), error.message);
      return true;
    });
    fs.writeFileSync(`${file}.sha256`, '');
    await assert.rejects(new FileFetcher({ path: file }).fetch(context({ signature: false, sha256: true })), /sha256 sidecar at .*app\.mjs\.sha256 is empty/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
