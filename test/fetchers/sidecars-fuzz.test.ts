// A .sha256 sidecar comes from the release source: whatever it holds, the fetcher takes one
// well-formed sha256 from it or fails the poll with ERR_OVERSEER_FETCH_FAILED.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseSha256 } from '../../fetchers/sidecars.ts';
import { isOverseerError } from '../../src/errors.ts';

const hex = fc.stringMatching(/^[0-9a-fA-F]{64}$/);
const line = fc.oneof(
  fc.tuple(hex, fc.constantFrom('', '  ', ' *', '\t'), fc.constantFrom('', 'app.mjs', 'dist/app.mjs', 'other.mjs', ' app.mjs')).map(([h, sep, n]) => `${h}${sep}${n}`),
  fc.string({ maxLength: 100 }),
);
const text = fc.array(line, { maxLength: 8 }).chain((lines) => fc.constantFrom('\n', '\r\n').map((eol) => lines.join(eol)));

test('parseSha256: any text gives one lowercase sha256 or ERR_OVERSEER_FETCH_FAILED', () => {
  fc.assert(fc.property(text, (input) => {
    try {
      assert.match(parseSha256(input, 'https://example.test/app.mjs.sha256', 'app.mjs'), /^[0-9a-f]{64}$/);
    } catch (error) {
      assert.ok(isOverseerError(error), `not an OverseerError: ${String(error)}`);
      assert.equal(error.code, 'ERR_OVERSEER_FETCH_FAILED');
    }
  }), { numRuns: 2_000 });
});

test('parseSha256: with several lines, only the one naming the release counts', () => {
  fc.assert(fc.property(hex, hex, (mine, other) => {
    assert.equal(parseSha256(`${other}  other.mjs\n${mine}  dist/app.mjs\n`, 'sums', 'app.mjs'), mine.toLowerCase());
  }));
});
