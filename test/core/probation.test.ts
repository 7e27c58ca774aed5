// The probation's pieces on their own, without processes: the verdict logic of Probation, the
// probe's target, the persisted list of rolled-back releases (read as hostile input), and the
// probation option's checks.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, test } from 'node:test';
import { normalizeConfig, resolveProbation } from '../../src/core/config.ts';
import { HealthProbe, probeOnce, probeTarget } from '../../src/core/health-probe.ts';
import { Probation } from '../../src/core/probation.ts';
import type { EventBody } from '../../src/events.ts';
import { addRolledBack, readRolledBack, rolledBackFile } from '../../src/upgrade/rolled-back.ts';
import { Rejections } from '../../src/upgrade/rejections.ts';
import { tempDir } from '../helpers/master.ts';

const quiet = { debug() {}, warn() {} };
const counts = (ok: number, errors: number) => ({ '1xx': 0, '2xx': ok, '3xx': 0, '4xx': 0, '5xx': errors });

function probation(settings: Parameters<typeof resolveProbation>[0] = {}) {
  const events: EventBody[] = [];
  const watched = new Probation({ settings: resolveProbation(settings)!, pid: 10, sha256: 'a'.repeat(64), listeners: [], reports: true, emit: (event) => events.push(event), log: quiet });
  return { watched, events };
}

describe('Probation: the verdict', () => {
  test('a 5xx ratio fails only once minRequests answers were counted', async () => {
    const { watched, events } = probation({ duration: 60_000, minRequests: 20, maxErrorRatio: 0.1 });
    watched.report(10, { type: 'responses', counts: counts(2, 1) });
    watched.report(10, { type: 'responses', counts: counts(12, 6) });
    assert.equal(watched.active, true, 'one error in three requests is not a verdict');
    watched.report(10, { type: 'responses', counts: counts(14, 7) });
    const verdict = await watched.done;
    assert.equal(verdict.outcome, 'failed');
    assert.equal(verdict.outcome === 'failed' && verdict.cause, 'error-ratio');
    const failed = events.find((event) => event.type === 'probation-failed');
    assert.deepEqual(failed?.type === 'probation-failed' && failed.evidence.responses, counts(14, 7));
  });

  test('reports of another pid, and counts that are not numbers, are ignored', async () => {
    const { watched } = probation({ duration: 60_000, minRequests: 1 });
    watched.report(11, { type: 'health', healthy: false, reason: 'not me' });
    watched.exited(11, 1, null);
    watched.report(10, { type: 'responses', counts: { '1xx': -1, '2xx': 'x', '3xx': 1e300, '4xx': Number.NaN, '5xx': 0 } as never });
    assert.equal(watched.active, true);
    watched.report(10, { type: 'health', healthy: true, reason: undefined });
    assert.deepEqual(await watched.done, { outcome: 'passed' });
  });

  test('a restart during probation: the new child is watched, counts add up, the old one\'s exit no longer counts', async () => {
    const { watched } = probation({ duration: 60_000, minRequests: 20, maxErrorRatio: 0.5 });
    watched.report(10, { type: 'responses', counts: counts(10, 5) });
    watched.follow(12);
    watched.exited(10, 0, null);
    assert.equal(watched.active, true);
    watched.report(12, { type: 'responses', counts: counts(0, 6) });
    const verdict = await watched.done;
    assert.equal(verdict.outcome === 'failed' && verdict.cause, 'error-ratio');
    assert.deepEqual(verdict.outcome === 'failed' && verdict.evidence.responses, counts(10, 11));
  });

  test('an exit fails with its code and signal; a stop ends without a verdict and emits nothing', async () => {
    const crashed = probation();
    crashed.watched.exited(10, null, 'SIGSEGV');
    const verdict = await crashed.watched.done;
    assert.deepEqual(verdict.outcome === 'failed' && verdict.evidence, { exitCode: null, signal: 'SIGSEGV' });
    const stopped = probation();
    stopped.watched.stop();
    assert.deepEqual(await stopped.watched.done, { outcome: 'stopped' });
    assert.deepEqual(stopped.events.map((event) => event.type), ['probation-started']);
  });

  test('the time up passes it', async () => {
    const { watched, events } = probation({ duration: 50 });
    assert.deepEqual(await watched.done, { outcome: 'passed' });
    assert.deepEqual(events.map((event) => event.type), ['probation-started', 'probation-passed']);
  });
});

describe('the health probe', () => {
  test('wildcard addresses are probed through loopback; unix sockets through their path', () => {
    assert.deepEqual(probeTarget({ address: ':3000', kind: 'tcp' }), { host: '127.0.0.1', port: 3000 });
    assert.deepEqual(probeTarget({ address: '0.0.0.0:80', kind: 'tcp' }), { host: '127.0.0.1', port: 80 });
    assert.deepEqual(probeTarget({ address: '[::]:81', kind: 'tcp' }), { host: '::1', port: 81 });
    assert.deepEqual(probeTarget({ address: '[::1]:82', kind: 'tcp' }), { host: '::1', port: 82 });
    assert.deepEqual(probeTarget({ address: 'unix:/run/app.sock', kind: 'unix' }), { socketPath: '/run/app.sock' });
  });

  test('a 404, a refused connection and a silent server are failures; `failures` in a row fail once', async () => {
    let status = 200;
    const server = http.createServer((req, res) => {
      if (req.url === '/silent') return;
      res.statusCode = status;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      assert.equal(await probeOnce({ host: '127.0.0.1', port }, '/health', 1000), undefined);
      status = 404;
      assert.equal(await probeOnce({ host: '127.0.0.1', port }, '/health', 1000), 'GET /health answered 404');
      assert.match((await probeOnce({ host: '127.0.0.1', port }, '/silent', 100)) ?? '', /no answer within 100 ms/);
      let calls = 0;
      const failed = new Promise<[number, string]>((resolve) => {
        const probe = new HealthProbe({ target: { host: '127.0.0.1', port }, path: '/h', interval: 10, failures: 3, timeout: 500, onFailed: (count, last) => {
          calls += 1;
          resolve([count, last]);
        } });
        probe.start();
      });
      assert.deepEqual(await failed, [3, 'GET /h answered 404']);
      assert.equal(calls, 1);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    assert.match((await probeOnce({ host: '127.0.0.1', port }, '/health', 1000)) ?? '', /ECONNREFUSED/);
  });
});

describe('the rolled-back list beside the bundle', () => {
  const sha = (char: string) => char.repeat(64);

  test('an entry written is read back and refuses the release by id and by sha256, with its signature', async () => {
    const bundle = path.join(tempDir(), 'app.mjs');
    await addRolledBack(bundle, { id: 'etag-1', sha256: [sha('a'), sha('b')], signature: '-', at: 1, cause: 'exit' }, () => {});
    // A write a kill -9 cut short (its pid gone) leaves a temp: the next read removes it.
    const deadTemp = `${rolledBackFile(bundle)}.999999999.tmp`;
    fs.writeFileSync(deadTemp, 'half');
    const entries = await readRolledBack(bundle, () => {});
    assert.equal(entries.length, 1);
    assert.equal(fs.existsSync(deadTemp), false);
    const rejections = new Rejections();
    for (const entry of entries) rejections.restore(entry);
    const release = { source: 's', id: 'etag-1', open: async () => [] } as never;
    assert.equal(rejections.refusedBefore(release), true);
    assert.equal(rejections.refusedBefore({ source: 's', id: 'etag-2', sha256: sha('b'), open: async () => [] } as never), true);
    assert.equal(rejections.refusedBefore({ source: 's', id: 'etag-1', signature: 'other', open: async () => [] } as never), false, 're-signed: tried again');
  });

  test('a damaged, hostile or oversized file is read as far as it is sound, with warnings; a symlink is not followed', async () => {
    const dir = tempDir();
    const bundle = path.join(dir, 'app.mjs');
    const file = rolledBackFile(bundle);
    const good = JSON.stringify({ id: 'ok', sha256: [sha('c')], signature: '-', at: 2, cause: 'probe' });
    fs.writeFileSync(file, [
      '{not json', good, JSON.stringify({ sha256: ['../../etc/passwd'], signature: '-' }), JSON.stringify({ sha256: [sha('d')], signature: 'x' }),
      JSON.stringify({ id: 'x'.repeat(5000), sha256: [], signature: '-' }), '[]', 'null', JSON.stringify({ __proto__: { polluted: true }, sha256: [sha('e')], signature: '-' }),
    ].join('\n'));
    const warnings: string[] = [];
    const entries = await readRolledBack(bundle, (message) => warnings.push(message));
    assert.deepEqual(entries.map((entry) => entry.id ?? entry.sha256[0]), ['ok', sha('e')]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.match(warnings.join('\n'), /6 line\(s\) are not rolled-back releases; ignored/);
    fs.writeFileSync(file, 'x'.repeat(2 * 1024 * 1024));
    assert.deepEqual(await readRolledBack(bundle, (message) => warnings.push(message)), []);
    assert.match(warnings.at(-1) ?? '', /more than a list of rolled-back releases holds/);
    fs.rmSync(file);
    const target = path.join(dir, 'elsewhere');
    fs.writeFileSync(target, `${good}\n`);
    fs.symlinkSync(target, file);
    assert.deepEqual(await readRolledBack(bundle, (message) => warnings.push(message)), []);
    assert.match(warnings.at(-1) ?? '', /cannot read .*ELOOP/);
  });
});

describe('the probation option', () => {
  const program = () => {};
  test('defaults, false, and overrides', () => {
    assert.deepEqual(normalizeConfig({ program }).probation, { duration: 30_000, maxErrorRatio: 0.1, minRequests: 20, probe: undefined });
    assert.equal(normalizeConfig({ program, probation: false }).probation, undefined);
    assert.deepEqual(normalizeConfig({ program, probation: { duration: 5000, probe: { path: '/h' } } }).probation?.probe, { path: '/h', interval: 1000, failures: 3, timeout: 2000, listener: 0 });
  });

  test('bad values are refused naming the option, with "did you mean"', () => {
    assert.throws(() => normalizeConfig({ program, probation: { duraton: 5 } }), /config\.probation has no option "duraton" \(did you mean "duration"\?\)/);
    assert.throws(() => normalizeConfig({ program, probation: { maxErrorRatio: 2 } }), /config\.probation\.maxErrorRatio must be a ratio from 0 to 1/);
    assert.throws(() => normalizeConfig({ program, probation: { probe: { path: 'health' } } }), /config\.probation\.probe\.path must be an absolute URL path such as "\/health"/);
    assert.throws(() => normalizeConfig({ program, probation: { probe: { path: '/a b' } } }), /probe\.path/);
    assert.throws(() => normalizeConfig({ program, probation: { probe: {} } }), /config\.probation\.probe\.path/);
    assert.throws(() => normalizeConfig({ program, probation: 'yes' }), /config\.probation must be true, false or/);
  });
});
