import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  assertFresh,
  bucketOf,
  chooseRelease,
  parseManifest,
  serializeManifest,
  unsafePath,
  type Manifest,
} from '../../src/manifest/document.ts';

const HASH = 'a'.repeat(64);
const release = (version: string, extra: Record<string, unknown> = {}) => ({ version, path: `app-${version}.mjs`, size: 100, sha256: HASH, ...extra });
const doc = (releases: unknown[], extra: Record<string, unknown> = {}) => ({
  schema: 'overseer-manifest/1',
  sequence: 7,
  expires: '2030-01-01T00:00:00Z',
  channels: { stable: { releases } },
  ...extra,
});
const parse = (value: unknown) => parseManifest(typeof value === 'string' ? value : JSON.stringify(value), 'test');
const fault = (value: unknown): { code: string; message: string; subject: string } => {
  try {
    parse(value);
  } catch (error) {
    return error as { code: string; message: string; subject: string };
  }
  throw new Error('parsed');
};

describe('parseManifest', () => {
  test('reads a manifest with defaults filled in, and serializes it back stably', () => {
    const manifest = parse(doc([release('1.4.0'), release('1.5.0', { rollout: 10 }), release('1.3.2', { pulled: true, sha256: 'F'.repeat(64) })]));
    assert.equal(manifest.sequence, 7);
    const [a, b, c] = manifest.channels['stable']!.releases;
    assert.deepEqual({ ...a }, { ...release('1.4.0'), rollout: 100, pulled: false });
    assert.equal(b!.rollout, 10);
    assert.equal(c!.pulled, true);
    assert.equal(c!.sha256, 'f'.repeat(64), 'hex is lower-cased');
    const text = serializeManifest(manifest);
    assert.ok(text.endsWith('}\n'));
    assert.ok(text.startsWith('{\n  "schema": "overseer-manifest/1",\n  "sequence": 7,'));
    assert.equal(serializeManifest(parseManifest(text, 'again')), text);
  });

  test('each kind of fault has its code and the message names the field', () => {
    const cases: Array<[unknown, string, string]> = [
      ['{"schema":', 'ERR_OVERSEER_MANIFEST_INVALID', '(the document)'],
      [[], 'ERR_OVERSEER_MANIFEST_INVALID', '(the document)'],
      [doc([], { schema: 'overseer-manifest/2' }), 'ERR_OVERSEER_MANIFEST_SCHEMA', 'schema'],
      [{ sequence: 1 }, 'ERR_OVERSEER_MANIFEST_INVALID', 'schema'],
      [doc([], { sequence: 0 }), 'ERR_OVERSEER_MANIFEST_INVALID', 'sequence'],
      [doc([], { sequence: 1.5 }), 'ERR_OVERSEER_MANIFEST_INVALID', 'sequence'],
      [doc([], { expires: '2030-02-30T00:00:00Z' }), 'ERR_OVERSEER_MANIFEST_INVALID', 'expires'],
      [doc([], { expires: '2030-01-01T00:00:00+02:00' }), 'ERR_OVERSEER_MANIFEST_INVALID', 'expires'],
      [doc([], { extra: 1 }), 'ERR_OVERSEER_MANIFEST_INVALID', 'extra'],
      [doc([release('1.0.0', { rolout: 5 })]), 'ERR_OVERSEER_MANIFEST_INVALID', 'channels.stable.releases[0].rolout'],
      [doc([release('1.0.0'), release('1.1.0', { sha256: 'xyz' })]), 'ERR_OVERSEER_MANIFEST_INVALID', 'channels.stable.releases[1].sha256'],
      [doc([release('1.0.0', { size: -1 })]), 'ERR_OVERSEER_MANIFEST_INVALID', 'channels.stable.releases[0].size'],
      [doc([release('v1.0.0')]), 'ERR_OVERSEER_MANIFEST_INVALID', 'channels.stable.releases[0].version'],
      [doc([release('1.0.0'), release('1.0.0')]), 'ERR_OVERSEER_MANIFEST_INVALID', 'channels.stable.releases[1].version'],
      [doc([release('1.0.0', { rollout: 101 })]), 'ERR_OVERSEER_MANIFEST_INVALID', 'channels.stable.releases[0].rollout'],
      [doc([release('1.0.0', { pulled: 'yes' })]), 'ERR_OVERSEER_MANIFEST_INVALID', 'channels.stable.releases[0].pulled'],
      [doc([release('1.0.0', { path: '../app.mjs' })]), 'ERR_OVERSEER_MANIFEST_UNSAFE_PATH', 'channels.stable.releases[0].path'],
      [{ ...doc([]), channels: { Stable: { releases: [] } } }, 'ERR_OVERSEER_MANIFEST_INVALID', 'channels["Stable"]'],
    ];
    for (const [value, code, field] of cases) {
      const error = fault(value);
      assert.equal(error.code, code, `${JSON.stringify(value)}: ${error.message}`);
      assert.equal(error.subject, field);
      assert.ok(error.message.includes(field), error.message);
    }
  });

  test('a "__proto__" channel written as JSON text is refused, not merged into the prototype', () => {
    const text = '{"schema":"overseer-manifest/1","sequence":1,"expires":"2030-01-01T00:00:00Z","channels":{"__proto__":{"releases":[]}}}';
    assert.equal(fault(text).code, 'ERR_OVERSEER_MANIFEST_INVALID');
  });

  test('artifact paths never leave the manifest location', () => {
    for (const bad of ['', '/etc/passwd', '../x', 'a/../b', 'a//b', './a', 'a/.', 'a\\b', 'http://evil/x', 'C:x', 'a%2e%2e/b', 'a?b', 'a#b', 'a b', 'é', 'x'.repeat(2000), 'a/', '//host/x']) {
      assert.ok(unsafePath(bad) !== undefined, bad);
    }
    for (const good of ['app.mjs', 'v1/app-1.0.0.mjs', 'a/b/c.tar.gz', '.hidden', 'a..b', 'app+build@1=2,3~']) assert.equal(unsafePath(good), undefined, good);
  });
});

describe('parseManifest against attackers (fast-check)', () => {
  test('any text: parses, or throws an OverseerError with a manifest code; never anything else', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
        try {
          parseManifest(text, 'fuzz');
        } catch (error) {
          assert.match((error as { code?: string }).code ?? '', /^ERR_OVERSEER_MANIFEST_/);
        }
      }),
      { numRuns: 2000 },
    );
  });

  const releaseArb = fc.record(
    {
      version: fc.oneof(fc.constantFrom('1.0.0', '2.3.4', '1.0.0-beta.1', 'v1', '01.0.0', ''), fc.string()),
      path: fc.oneof(fc.constantFrom('app.mjs', 'a/b.mjs', '../a', '/a', 'a//b', 'a\\b', 'x:y', '%2e%2e'), fc.string()),
      size: fc.oneof(fc.integer(), fc.double(), fc.constant('1')),
      sha256: fc.oneof(fc.constant(HASH), fc.stringMatching(/^[0-9a-fA-F]{60,66}$/), fc.string()),
      rollout: fc.oneof(fc.integer({ min: -5, max: 105 }), fc.double(), fc.constant(null)),
      pulled: fc.oneof(fc.boolean(), fc.constant(0)),
      junk: fc.anything(),
    },
    { requiredKeys: [] },
  );
  const manifestArb = fc.record(
    {
      schema: fc.oneof(fc.constant('overseer-manifest/1'), fc.string()),
      sequence: fc.oneof(fc.integer({ min: -2, max: 1e6 }), fc.double(), fc.constant(2 ** 60)),
      expires: fc.oneof(fc.constant('2030-01-01T00:00:00Z'), fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.string()),
      channels: fc.dictionary(fc.oneof(fc.constantFrom('stable', 'beta', '__proto__', 'constructor', ''), fc.string()), fc.oneof(fc.record({ releases: fc.array(releaseArb, { maxLength: 4 }) }), fc.anything())),
    },
    { requiredKeys: [] },
  );

  test('structured mutations: an accepted manifest holds only safe, well-typed values and round-trips', () => {
    fc.assert(
      fc.property(manifestArb, (value) => {
        let manifest: Manifest;
        try {
          manifest = parse(value);
        } catch (error) {
          assert.match((error as { code?: string }).code ?? '', /^ERR_OVERSEER_MANIFEST_/);
          assert.ok((error as { subject?: string }).subject, 'names a field');
          return;
        }
        assert.ok(Number.isSafeInteger(manifest.sequence) && manifest.sequence >= 1);
        for (const [name, channel] of Object.entries(manifest.channels)) {
          assert.match(name, /^[a-z0-9][a-z0-9._-]*$/);
          for (const r of channel.releases) {
            assert.equal(unsafePath(r.path), undefined);
            assert.match(r.sha256, /^[0-9a-f]{64}$/);
            assert.ok(r.rollout >= 0 && r.rollout <= 100 && Number.isSafeInteger(r.size) && r.size > 0);
          }
        }
        const text = serializeManifest(manifest);
        assert.equal(serializeManifest(parseManifest(text, 'again')), text);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('bucketOf and chooseRelease', () => {
  test('buckets are in [0,100), stable, spread evenly, and differ per version', () => {
    const ids = Array.from({ length: 4000 }, (_, i) => `host-${i}`);
    const buckets = ids.map((id) => bucketOf(id, '1.5.0'));
    assert.ok(buckets.every((b) => b >= 0 && b < 100));
    assert.equal(bucketOf('host-1', '1.5.0'), buckets[1]);
    const under10 = buckets.filter((b) => b < 10).length;
    // Binomial(4000, 0.1): mean 400, sd ≈ 19; 6 sd either way.
    assert.ok(under10 > 286 && under10 < 514, `${under10}`);
    assert.notEqual(bucketOf('host-1', '1.6.0'), buckets[1]);
  });

  test('raising a rollout widens exactly the set that already has it', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 50 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }), (ids, a, b) => {
        const [low, high] = a < b ? [a, b] : [b, a];
        for (const id of ids) if (bucketOf(id, '2.0.0') < low) assert.ok(bucketOf(id, '2.0.0') < high);
      }),
    );
  });

  const manifest = (releases: unknown[]) => parse({ ...doc(releases), channels: { stable: { releases }, beta: { releases: [release('3.0.0')] } } });
  // Two ids with known buckets for 1.5.0: one below 10, one above 50.
  const ids = Array.from({ length: 200 }, (_, i) => `id-${i}`);
  const early = ids.find((id) => bucketOf(id, '1.5.0') < 10)!;
  const late = ids.find((id) => bucketOf(id, '1.5.0') >= 50)!;

  test('the newest release whose rollout covers the bucket; others wait and say why', () => {
    const m = manifest([release('1.4.0'), release('1.5.0', { rollout: 10 })]);
    const a = chooseRelease(m, { channel: 'stable', instanceId: early, currentVersion: '1.4.0' });
    assert.equal(a.action, 'upgrade');
    assert.equal(a.release?.version, '1.5.0');
    const b = chooseRelease(m, { channel: 'stable', instanceId: late, currentVersion: '1.4.0' });
    assert.equal(b.action, 'stay');
    assert.equal(b.release?.version, '1.4.0');
    assert.match(b.reason, /1\.5\.0 is rolled out to 10 % and this instance's bucket is \d+\.\d\d, so it waits/);
    assert.equal(b.newest?.version, '1.5.0');
    const fresh = chooseRelease(m, { channel: 'stable', instanceId: late, currentVersion: undefined });
    assert.equal(fresh.action, 'upgrade');
    assert.equal(fresh.release?.version, '1.4.0');
  });

  test('a pulled current version goes back to the newest release it may take: the one sanctioned downgrade', () => {
    const m = manifest([release('1.4.0'), release('1.5.0', { pulled: true })]);
    const a = chooseRelease(m, { channel: 'stable', instanceId: late, currentVersion: '1.5.0' });
    assert.equal(a.action, 'pull-back');
    assert.equal(a.release?.version, '1.4.0');
    assert.match(a.reason, /1\.5\.0 is pulled/);
    const none = chooseRelease(manifest([release('1.5.0', { pulled: true })]), { channel: 'stable', instanceId: late, currentVersion: '1.5.0' });
    assert.equal(none.action, 'stay');
    assert.match(none.reason, /keeps serving/);
  });

  test('never a silent downgrade: a channel whose newest is lower makes the instance wait', () => {
    const m = manifest([release('1.4.0')]);
    const a = chooseRelease(m, { channel: 'stable', instanceId: early, currentVersion: '3.0.0' });
    assert.equal(a.action, 'stay');
    assert.equal(a.release, undefined);
    assert.match(a.reason, /waits for a newer one/);
    assert.equal(chooseRelease(m, { channel: 'beta', instanceId: early, currentVersion: '1.4.0' }).release?.version, '3.0.0');
  });

  test('a channel the manifest lacks is refused, naming it', () => {
    assert.throws(() => chooseRelease(manifest([]), { channel: 'nightly', instanceId: early, currentVersion: undefined }), {
      code: 'ERR_OVERSEER_MANIFEST_NO_CHANNEL',
      subject: 'channels.nightly',
    });
    assert.throws(() => chooseRelease(manifest([]), { channel: 'constructor', instanceId: early, currentVersion: undefined }), { code: 'ERR_OVERSEER_MANIFEST_NO_CHANNEL' });
  });

  test('assertFresh: expired and replayed manifests are refused', () => {
    const m = manifest([]);
    assert.throws(() => assertFresh(m, { now: Date.parse('2030-01-01T00:00:01Z'), lastSequence: undefined, source: 's' }), { code: 'ERR_OVERSEER_MANIFEST_EXPIRED' });
    assert.throws(() => assertFresh(m, { now: 0, lastSequence: 8, source: 's' }), { code: 'ERR_OVERSEER_MANIFEST_ROLLBACK' });
    assertFresh(m, { now: 0, lastSequence: 7, source: 's' });
  });
});
