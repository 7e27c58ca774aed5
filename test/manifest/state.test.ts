import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { instanceFile, readSequence, resolveInstanceId, sequenceFile, writeSequence } from '../../src/manifest/state.ts';
import { tempDir } from '../helpers/master.ts';

test('the sequence file: written atomically, read back; nonsense is ignored with a warning', async () => {
  const bundle = path.join(tempDir(), 'app.mjs');
  const warnings: string[] = [];
  assert.equal(await readSequence(bundle, (m) => warnings.push(m)), undefined);
  await writeSequence(bundle, 12);
  assert.equal(await readSequence(bundle, (m) => warnings.push(m)), 12);
  assert.equal(warnings.length, 0);
  for (const junk of ['', 'nonsense', '{"sequence": -1}', '{"sequence": 1.5}', '[12]', 'null']) {
    fs.writeFileSync(sequenceFile(bundle), junk);
    assert.equal(await readSequence(bundle, (m) => warnings.push(m)), undefined, junk);
  }
  assert.equal(warnings.length, 6);
  assert.equal(fs.readdirSync(path.dirname(bundle)).filter((name) => name.endsWith('.tmp')).length, 0, 'no temp left');
});

test('the instance id: given, from the environment, else generated once; a bad one is refused', async () => {
  const bundle = path.join(tempDir(), 'app.mjs');
  const warn = () => {};
  assert.equal(await resolveInstanceId(bundle, 'pod-1', warn), 'pod-1');
  assert.equal(fs.existsSync(instanceFile(bundle)), false, 'a given id is not written');
  await assert.rejects(resolveInstanceId(bundle, 'has space', warn), { code: 'ERR_OVERSEER_INVALID_CONFIG' });
  await assert.rejects(resolveInstanceId(bundle, 'x'.repeat(201), warn), { code: 'ERR_OVERSEER_INVALID_CONFIG' });
  const [a, b] = await Promise.all([resolveInstanceId(bundle, undefined, warn), resolveInstanceId(bundle, undefined, warn)]);
  assert.equal(a, b, 'two masters starting at once agree on one id');
  assert.equal(await resolveInstanceId(bundle, undefined, warn), a);
  fs.writeFileSync(instanceFile(bundle), 'bad id with spaces\n');
  const warnings: string[] = [];
  const fresh = await resolveInstanceId(bundle, undefined, (m) => warnings.push(m));
  assert.notEqual(fresh, a);
  assert.equal(warnings.length, 1);
});
