import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { CODES } from '../src/errors.ts';
import { CONFIG_SPEC, DEFAULTS } from '../src/core/config.ts';
import { root } from './helpers/master.ts';

const read = (file: string) => fs.readFileSync(`${root}/${file}`, 'utf8');

test('docs/errors.md lists every error code', () => {
  const doc = read('docs/errors.md');
  for (const code of Object.keys(CODES)) assert.ok(doc.includes(`\`${code}\``), `${code} is missing from docs/errors.md`);
});

test('docs/config.md documents every option, with the defaults the code uses', () => {
  const doc = read('docs/config.md');
  const keys = Object.keys(CONFIG_SPEC);
  assert.ok(keys.length > 15);
  for (const key of keys) assert.match(doc, new RegExp(`\\| \`${key}[(\`]`), `config.${key} is missing from docs/config.md`);
  for (const [key, value] of Object.entries(DEFAULTS)) {
    if (typeof value === 'number') assert.match(doc, new RegExp(`\\| \`${key}\` \\| \`${value}\` \\|`), `default of ${key}`);
  }
});

test('the README shows both quick-start commands', () => {
  const readme = read('README.md');
  assert.match(readme, /npm install && npm run demo/);
  assert.match(readme, /npm install && npm test/);
});
