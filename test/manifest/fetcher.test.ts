import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ManifestFetcher, type ManifestFetcherOptions } from '../../fetchers/manifest.ts';
import type { EventBody } from '../../src/events.ts';
import { instanceFile, sequenceFile } from '../../src/manifest/state.ts';
import type { FetchContext, FetchResult, Release } from '../../src/upgrade/fetcher.ts';
import { parsePublicKey } from '../../src/upgrade/minisign.ts';
import { createMinisignKey } from '../../support/minisign.ts';
import { S3_CREDENTIALS, startS3, type S3Server } from '../../support/s3.ts';
import { releaseServer } from '../helpers/ended.ts';
import { readAll } from '../helpers/fetch.ts';
import { tempDir } from '../helpers/master.ts';
import { manifestOf, publish, sha256, type Put } from '../../support/manifest-publish.ts';
import { serializeManifest } from '../../src/manifest/document.ts';

const key = createMinisignKey();
const otherKey = createMinisignKey();
const app = (version: string) => `// app ${version}\nexport default ${JSON.stringify(version)};\n`;

interface Harness {
  readonly events: EventBody[];
  readonly bundle: string;
  poll(fetcher: ManifestFetcher, extra?: Partial<FetchContext>): Promise<FetchResult>;
}

function harness(keys = [key]): Harness {
  const events: EventBody[] = [];
  const bundle = path.join(tempDir('overseer-manifest-'), 'app.mjs');
  return {
    events,
    bundle,
    poll: (fetcher, extra = {}) =>
      fetcher.fetch({
        signal: new AbortController().signal,
        currentSha256: '0'.repeat(64),
        currentVersion: '1.0.0',
        publicKeys: keys.map((k) => parsePublicKey(k.publicKey)),
        bundlePath: bundle,
        emit: (event) => events.push(event),
        ...extra,
      }),
  };
}

const releaseOf = (result: FetchResult): Release => {
  assert.equal(result.type, 'update', 'the fetcher offers a release');
  return (result as Extract<FetchResult, { type: 'update' }>).release;
};

const codeOf = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return 'resolved';
};

const fetchers: ManifestFetcher[] = [];
const make = (options: ManifestFetcherOptions) => {
  const fetcher = new ManifestFetcher(options);
  fetchers.push(fetcher);
  return fetcher;
};
after(async () => {
  for (const fetcher of fetchers) await fetcher.close();
});

describe('ManifestFetcher over HTTP', () => {
  test('reads a signed manifest, offers the release with its signed size, sha256 and version, and reads it cut at that size', async () => {
    const server = await releaseServer();
    const put: Put = (p, body) => void server.publish(`/rel/${p}`, body);
    await publish(put, key, 1, { stable: [{ version: '1.0.0', body: app('1.0.0') }, { version: '1.1.0', body: app('1.1.0') }] });
    const h = harness();
    const fetcher = make({ http: { url: server.url('/rel/manifest.json') } });
    const release = releaseOf(await h.poll(fetcher));
    assert.equal(release.version, '1.1.0');
    assert.equal(release.sha256, sha256(app('1.1.0')));
    assert.deepEqual(release.manifest, { version: '1.1.0', sequence: 1, downgrade: false });
    assert.equal(release.signature, undefined, 'the artifact itself is unsigned');
    // The server now sends more than the manifest says: the body ends at the signed size.
    server.publish('/rel/app-1.1.0.mjs', `${app('1.1.0')}${'x'.repeat(100_000)}`);
    const body = await readAll(await release.open(new AbortController().signal));
    assert.equal(body.toString(), app('1.1.0'));
    const accepted = h.events.find((event) => event.type === 'manifest-accepted');
    assert.ok(accepted && accepted.type === 'manifest-accepted' && accepted.sequence === 1 && accepted.action === 'upgrade');
    assert.equal(fs.readFileSync(sequenceFile(h.bundle), 'utf8'), '{"sequence":1}\n');
    assert.match(fs.readFileSync(instanceFile(h.bundle), 'utf8'), /^[0-9a-f-]{36}\n$/);
    // An idle poll is one HEAD of the manifest.
    const before = server.requests.length;
    await h.poll(fetcher);
    assert.deepEqual(server.requests.slice(before).map((r) => `${r.method} ${r.path}`), ['HEAD /rel/manifest.json']);
  });

  test('bad input is refused with a code and a manifest-refused event naming the field; nothing is downloaded', async () => {
    const server = await releaseServer();
    const cases: Array<{ name: string; text: string; signature?: string; code: string; field: string }> = [];
    const good = serializeManifest(manifestOf(3, { stable: [{ version: '1.1.0', body: app('1.1.0') }] }));
    const parsed = JSON.parse(good) as Record<string, any>;
    const variant = (change: (m: Record<string, any>) => void) => {
      const copy = structuredClone(parsed);
      change(copy);
      return JSON.stringify(copy);
    };
    cases.push({ name: 'not json', text: '{"schema": "overseer-manifest/1",', code: 'ERR_OVERSEER_MANIFEST_INVALID', field: '(the document)' });
    cases.push({ name: 'schema', text: variant((m) => (m.schema = 'overseer-manifest/9')), code: 'ERR_OVERSEER_MANIFEST_SCHEMA', field: 'schema' });
    cases.push({ name: 'outside', text: variant((m) => (m.channels.stable.releases[0].path = '../../etc/passwd')), code: 'ERR_OVERSEER_MANIFEST_UNSAFE_PATH', field: 'channels.stable.releases[0].path' });
    cases.push({ name: 'no channel', text: variant((m) => (m.channels = { beta: m.channels.stable })), code: 'ERR_OVERSEER_MANIFEST_NO_CHANNEL', field: 'channels.stable' });
    cases.push({ name: 'bad sha', text: variant((m) => (m.channels.stable.releases[0].sha256 = 'zz')), code: 'ERR_OVERSEER_MANIFEST_INVALID', field: 'channels.stable.releases[0].sha256' });
    cases.push({ name: 'wrong key', text: good, signature: otherKey.sign(Buffer.from(good)), code: 'ERR_OVERSEER_SIGNATURE_INVALID', field: '' });
    cases.push({ name: 'tampered', text: good.replace('"sequence": 3', '"sequence": 4'), signature: key.sign(Buffer.from(good)), code: 'ERR_OVERSEER_SIGNATURE_INVALID', field: '' });
    for (const c of cases) {
      const base = `/${c.name.replace(/ /g, '-')}`;
      server.publish(`${base}/app-1.1.0.mjs`, app('1.1.0'));
      server.publish(`${base}/manifest.json`, c.text);
      server.publish(`${base}/manifest.json.minisig`, c.signature ?? key.sign(Buffer.from(c.text)));
      const h = harness();
      const fetcher = make({ http: { url: server.url(`${base}/manifest.json`) } });
      assert.equal(await codeOf(h.poll(fetcher)), c.code, c.name);
      const refused = h.events.find((event) => event.type === 'manifest-refused');
      assert.ok(refused && refused.type === 'manifest-refused', c.name);
      assert.equal(refused.code, c.code);
      if (c.field !== '') {
        assert.equal(refused.field, c.field, c.name);
        assert.ok(refused.error.includes(c.field), refused.error);
      }
      assert.equal(fetcher.manifestStatus().refused?.code, c.code);
      assert.ok(!server.requests.some((r) => r.path === `${base}/app-1.1.0.mjs`), `${c.name}: the artifact is never requested`);
      assert.ok(!fs.existsSync(sequenceFile(h.bundle)), `${c.name}: no sequence kept`);
    }
  });

  test('an expired manifest and a replayed older one are refused; the sequence survives a restart', async () => {
    const server = await releaseServer();
    const put: Put = (p, body) => void server.publish(`/r/${p}`, body);
    const h = harness();
    const url = server.url('/r/manifest.json');
    const old = await publish(put, key, 5, { stable: [{ version: '1.1.0', body: app('1.1.0') }] });
    const oldSignature = key.sign(Buffer.from(old));
    await publish(put, key, 6, { stable: [{ version: '1.2.0', body: app('1.2.0') }] });
    assert.equal(releaseOf(await h.poll(make({ http: { url } }))).version, '1.2.0');
    // Replay sequence 5 to a fresh fetcher (a restarted master): the kept sequence refuses it.
    put('manifest.json.minisig', oldSignature);
    put('manifest.json', old);
    assert.equal(await codeOf(h.poll(make({ http: { url } }))), 'ERR_OVERSEER_MANIFEST_ROLLBACK');
    await publish(put, key, 7, { stable: [{ version: '1.2.0', body: app('1.2.0') }] }, { expires: '2020-01-01T00:00:00Z' });
    const fetcher = make({ http: { url } });
    assert.equal(await codeOf(h.poll(fetcher)), 'ERR_OVERSEER_MANIFEST_EXPIRED');
    const refused = h.events.findLast((event) => event.type === 'manifest-refused');
    assert.ok(refused?.type === 'manifest-refused' && refused.field === 'expires');
    assert.equal(fs.readFileSync(sequenceFile(h.bundle), 'utf8'), '{"sequence":6}\n');
  });

  test('staged rollout by bucket, pull-back as the one sanctioned downgrade, and no silent downgrade on a channel switch', async () => {
    const server = await releaseServer();
    const put: Put = (p, body) => void server.publish(`/s/${p}`, body);
    const url = server.url('/s/manifest.json');
    await publish(put, key, 1, {
      stable: [{ version: '1.0.0', body: app('1.0.0') }, { version: '1.1.0', body: app('1.1.0'), rollout: 0 }],
      beta: [{ version: '0.9.0', body: app('0.9.0') }],
    });
    const h = harness();
    const running = { currentSha256: sha256(app('1.0.0')), currentVersion: undefined };
    const stable = make({ http: { url }, instanceId: 'pod-7' });
    assert.equal((await h.poll(stable, running)).type, 'none', 'rollout 0: nobody takes 1.1.0');
    assert.match(stable.manifestStatus().reason ?? '', /1\.1\.0 is rolled out to 0 % and this instance's bucket is/);
    await publish(put, key, 2, { stable: [{ version: '1.0.0', body: app('1.0.0') }, { version: '1.1.0', body: app('1.1.0'), rollout: 100 }] });
    assert.equal(releaseOf(await h.poll(stable, running)).version, '1.1.0');
    // 1.1.0 is pulled: an instance running it goes back to 1.0.0, sanctioned by the manifest.
    await publish(put, key, 3, { stable: [{ version: '1.0.0', body: app('1.0.0') }, { version: '1.1.0', body: app('1.1.0'), pulled: true }], beta: [{ version: '0.9.0', body: app('0.9.0') }] });
    const back = releaseOf(await h.poll(stable, { currentSha256: sha256(app('1.1.0')) }));
    assert.deepEqual(back.manifest, { version: '1.0.0', sequence: 3, downgrade: true });
    // Switching to beta (0.9.0) from 1.0.0 waits for a newer release, unless told otherwise.
    assert.equal((await h.poll(make({ http: { url }, channel: 'beta' }), running)).type, 'none');
    const told = releaseOf(await h.poll(make({ http: { url }, channel: 'beta', allowDowngrade: true }), running));
    assert.deepEqual(told.manifest, { version: '0.9.0', sequence: 3, downgrade: true });
  });

  test('several public keys: a manifest signed with either verifies (key rotation)', async () => {
    const server = await releaseServer();
    const put: Put = (p, body) => void server.publish(`/k/${p}`, body);
    await publish(put, otherKey, 1, { stable: [{ version: '1.1.0', body: app('1.1.0') }] });
    assert.equal(releaseOf(await harness([key, otherKey]).poll(make({ http: { url: server.url('/k/manifest.json') } }))).version, '1.1.0');
    assert.equal(await codeOf(harness([key]).poll(make({ http: { url: server.url('/k/manifest.json') } }))), 'ERR_OVERSEER_SIGNATURE_INVALID');
    assert.equal(await codeOf(harness([]).poll(make({ http: { url: server.url('/k/manifest.json') } }))), 'ERR_OVERSEER_SIGNATURE_MISSING');
  });

  test('the instance id: the option, then OVERSEER_INSTANCE_ID, then the file beside the bundle', async () => {
    const server = await releaseServer();
    await publish((p, body) => void server.publish(`/i/${p}`, body), key, 1, { stable: [{ version: '1.1.0', body: app('1.1.0') }] });
    const url = server.url('/i/manifest.json');
    const h = harness();
    await h.poll(make({ http: { url }, instanceId: 'web-1' }));
    assert.equal(make({ http: { url } }).manifestStatus().instanceId, undefined);
    const given = make({ http: { url }, instanceId: 'web-1' });
    await h.poll(given);
    assert.equal(given.manifestStatus().instanceId, 'web-1');
    process.env.OVERSEER_INSTANCE_ID = 'pod-abc';
    try {
      const fromEnv = make({ http: { url } });
      await h.poll(fromEnv);
      assert.equal(fromEnv.manifestStatus().instanceId, 'pod-abc');
    } finally {
      delete process.env.OVERSEER_INSTANCE_ID;
    }
    const generated = make({ http: { url } });
    await h.poll(generated);
    const again = make({ http: { url } });
    await h.poll(again);
    assert.equal(again.manifestStatus().instanceId, generated.manifestStatus().instanceId, 'kept beside the bundle');
    assert.equal(fs.readFileSync(instanceFile(h.bundle), 'utf8').trim(), generated.manifestStatus().instanceId);
  });

  test('options are checked with their names', () => {
    assert.throws(() => new ManifestFetcher({}), { code: 'ERR_OVERSEER_INVALID_CONFIG', message: /exactly one of http, s3, file, github/ });
    assert.throws(() => new ManifestFetcher({ http: { url: 'http://127.0.0.1/m.json' }, channel: 'Beta' }), { code: 'ERR_OVERSEER_INVALID_CONFIG', message: /ManifestFetcher\.channel/ });
    assert.throws(() => new ManifestFetcher({ http: { url: 'http://127.0.0.1/m.json', sha256Url: 'x' } as never }), { code: 'ERR_OVERSEER_INVALID_CONFIG', message: /ManifestFetcher\.http has no option "sha256Url"/ });
  });
});

describe('ManifestFetcher over S3, File and GitHub', () => {
  let s3: S3Server;
  before(async () => {
    s3 = await startS3();
  });
  after(async () => {
    await s3.close();
  });

  test('S3: the manifest key, its .minisig and artifacts under its folder', async () => {
    await publish((p, body) => s3.put(`apps/web/${p}`, body), key, 2, { stable: [{ version: '2.0.0', path: 'builds/app-2.0.0.mjs', body: app('2.0.0') }] });
    const fetcher = make({ s3: { bucket: s3.bucket, key: 'apps/web/manifest.json', endpoint: s3.endpoint, forcePathStyle: true, credentials: { ...S3_CREDENTIALS } } });
    const release = releaseOf(await harness().poll(fetcher));
    assert.equal(release.source, `s3://${s3.bucket}/apps/web/builds/app-2.0.0.mjs`);
    assert.equal((await readAll(await release.open(new AbortController().signal))).toString(), app('2.0.0'));
    const before = s3.requests.length;
    await harness().poll(fetcher);
    assert.deepEqual(s3.requests.slice(before).map((r) => r.method), ['HEAD'], 'an idle poll is one HeadObject');
  });

  test('File: the manifest path and artifacts beside it; a changed artifact fails its sha256 later, in the master', async () => {
    const dir = tempDir('overseer-manifest-file-');
    const put: Put = (p, body) => {
      fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
      fs.writeFileSync(path.join(dir, p), body);
    };
    await publish(put, key, 1, { stable: [{ version: '1.5.0', path: 'v/app.mjs', body: app('1.5.0') }] });
    const release = releaseOf(await harness().poll(make({ file: { path: path.join(dir, 'manifest.json') } })));
    assert.equal(release.source, path.join(dir, 'v/app.mjs'));
    assert.equal((await readAll(await release.open(new AbortController().signal))).toString(), app('1.5.0'));
  });

  test('GitHub: manifest.json of a release tag through the download URLs; assets have no folders', async () => {
    const server = await releaseServer();
    const put: Put = (p, body) => void server.publish(`/acme/web/releases/download/manifest/${p}`, body);
    await publish(put, key, 1, { stable: [{ version: '3.0.0', path: 'app-3.0.0.mjs', body: app('3.0.0') }] });
    const fetcher = make({ github: { owner: 'acme', repo: 'web', baseUrl: server.url('/') } });
    const release = releaseOf(await harness().poll(fetcher));
    assert.equal(release.source, server.url('/acme/web/releases/download/manifest/app-3.0.0.mjs'));
    assert.equal((await readAll(await release.open(new AbortController().signal))).toString(), app('3.0.0'));
    await publish(put, key, 2, { stable: [{ version: '3.1.0', path: 'sub/app.mjs', body: app('3.1.0') }] });
    assert.equal(await codeOf(harness().poll(fetcher)), 'ERR_OVERSEER_MANIFEST_UNSAFE_PATH');
  });
});
