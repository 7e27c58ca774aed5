/**
 * isValidSemver (src/core/semver-valid.ts) against semver's own valid(): hand-picked edge cases
 * and thousands of random strings over the characters a version is made of, long ones included.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import semverValid from 'semver/functions/valid.js';
import { isValidSemver } from '../../src/core/semver-valid.ts';

const agrees = (value: string) => assert.equal(isValidSemver(value), semverValid(value) !== null, JSON.stringify(value));

test('edge cases answer as semver.valid does', () => {
  const cases = [
    '1.4.0', 'v1.4.0', '=1.4.0', 'V1.4.0', ' 1.4.0 ', '\t1.2.3\n', '1.4', '1', '', ' ', '01.4.0', '1.04.0', '1.4.00',
    '1.4.0-rc.1', '1.4.0-rc.01', '1.4.0-0', '1.4.0-00', '1.4.0-0a', '1.4.0-', '1.4.0-a..b', '1.4.0+build.5', '1.4.0+',
    '1.4.0+001', '1.4.0-alpha+exp.sha.5114f85', '1.4.0-x-y-z.--', '1.4.0+build..1', 'v 1.4.0', 'vv1.4.0',
    `${Number.MAX_SAFE_INTEGER}.0.0`, `${Number.MAX_SAFE_INTEGER + 1}.0.0`, '9007199254740993.0.0', '99999999999999999999.0.0',
    `1.0.0-${'a'.repeat(240)}`, `1.0.0-${'a'.repeat(260)}`, ` ${'1.0.0'.padEnd(255)}`, '1.2.3\u00a0', '\u20281.2.3',
  ];
  for (const value of cases) agrees(value);
});

test('random strings answer as semver.valid does', () => {
  const alphabet = ['0', '1', '9', '.', '.', '-', '+', 'v', 'a', 'Z', ' ', '='];
  let seed = 12345;
  const random = (below: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % below;
  };
  let valid = 0;
  for (let index = 0; index < 20_000; index++) {
    // Half start from a valid version and get mutated, half are free-form.
    let value = index % 2 === 0 ? `${random(3)}.${random(12)}.${random(3)}` : '';
    const extra = random(index % 100 === 0 ? 300 : 10);
    for (let char = 0; char < extra; char++) {
      const at = random(value.length + 1);
      value = value.slice(0, at) + alphabet[random(alphabet.length)] + value.slice(at);
    }
    agrees(value);
    if (semverValid(value) !== null) valid++;
  }
  assert.ok(valid > 1000, `the corpus holds valid versions too (${valid})`);
});
