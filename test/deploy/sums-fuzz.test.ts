// SHA256SUMS comes from whoever can write release/: its parser must refuse anything malformed
// with its own code, and never let a listed path leave release/.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseSums } from '../../src/deploy/release.ts';
import { isOverseerError } from '../../src/errors.ts';

const hex = fc.stringMatching(/^[0-9a-fA-F]{64}$/);
const segment = fc.oneof(fc.constantFrom('.', '..', '', 'a', 'b.txt', ' ', '\\', '\0'), fc.string({ maxLength: 8 }));
const name = fc.array(segment, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('/'));
const line = fc.oneof(
  fc.tuple(hex, fc.constantFrom('  ', ' *', ' ', '\t', '   '), fc.oneof(name, fc.constantFrom('/etc/passwd', '../x', './a/../../x', 'a/../../x'))).map(([h, sep, n]) => `${h}${sep}${n}`),
  fc.string({ maxLength: 120 }),
  fc.constantFrom('# comment', '', '\r'),
);
const text = fc.array(line, { maxLength: 12 }).chain((lines) => fc.constantFrom('\n', '\r\n').map((eol) => lines.join(eol)));

function outside(listed: string): boolean {
  return listed.startsWith('/') || listed === '..' || listed.startsWith('../');
}

test('parseSums: any text gives paths inside release/ and lowercase sha256s, or ERR_OVERSEER_RELEASE_INVALID', () => {
  fc.assert(fc.property(text, (input) => {
    let sums: Map<string, string>;
    try {
      sums = parseSums(input);
    } catch (error) {
      assert.ok(isOverseerError(error), `not an OverseerError: ${String(error)}`);
      assert.equal(error.code, 'ERR_OVERSEER_RELEASE_INVALID');
      return;
    }
    for (const [listed, sha] of sums) {
      assert.ok(!outside(listed), `${JSON.stringify(listed)} leaves release/`);
      assert.match(sha, /^[0-9a-f]{64}$/);
    }
  }), { numRuns: 2_000 });
});

test('parseSums: real sha256sum output is read back whole', () => {
  fc.assert(fc.property(fc.uniqueArray(fc.tuple(hex, fc.stringMatching(/^[a-z0-9_-]{1,8}(\/[a-z0-9_-]{1,8}){0,3}\.?[a-z]{0,3}$/)), { selector: ([, n]) => n, maxLength: 10 }), (entries) => {
    const sums = parseSums(entries.map(([h, n]) => `${h}  ${n}\n`).join(''));
    assert.deepEqual([...sums.keys()], entries.map(([, n]) => n));
  }), { numRuns: 300 });
});
