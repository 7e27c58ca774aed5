/**
 * The download's collection pacer (src/upgrade/memory.ts): a young-generation collection at
 * the latest every `every` bytes, earlier at a wait once `idleEvery` bytes came.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collectYoungGarbage, createCollectionPacer } from '../../src/upgrade/memory.js';

test('collects every `every` bytes, or at a wait from `idleEvery` bytes on, counting from the last collection', () => {
  const collections: number[] = [];
  let seen = 0;
  const pace = createCollectionPacer(4096, 1024, () => collections.push(seen));
  const at = (total: number, wait = false): void => {
    seen = total;
    if (wait) pace.idle(total);
    else pace(total);
  };
  at(1000, true); // under idleEvery: no
  at(1024, true); // a wait at 1 KiB: yes
  at(3000); // 1976 since: no
  at(5119); // 4095 since: no
  at(5120); // 4096 since: yes
  at(5200, true); // 80 since: no
  at(9000); // 3880 since: no
  at(9216, true); // 4096 since, at a wait: yes
  assert.deepEqual(collections, [1024, 5120, 9216]);
});

test('without idleEvery a wait collects on the same cadence as the bytes', () => {
  let count = 0;
  const pace = createCollectionPacer(100, undefined, () => count++);
  pace.idle(99);
  pace(99);
  assert.equal(count, 0);
  pace.idle(100);
  pace(150);
  assert.equal(count, 1);
});

test('collectYoungGarbage runs where V8 allows it and is harmless to repeat', () => {
  for (let index = 0; index < 3; index++) collectYoungGarbage();
});
