// The store watcher's compact memory of seen entries (src/store/seen-entries.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lookupKey, SeenEntries, seenKey } from '../../../src/store/seen-entries.js';

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
/** A distinct valid hash part per i (the low digits vary). */
const hashOf = (i: number) => {
  let s = '';
  for (let n = i, k = 0; k < 32; k++, n = Math.floor(n / 32)) s = NIX32[n % 32]! + s;
  return s;
};
const pathKey = (i: number) => seenKey(`${hashOf(i)}-p${i}`, `${hashOf(i)}-p${i}`);

void describe('seen-entry keys', () => {
  const base = `${hashOf(7)}-hello-2.12`;
  void test('a path and its .lock have keys of their own, and a lookup finds each', () => {
    assert.equal(seenKey(base, base), `${hashOf(7)}p`);
    assert.equal(seenKey(`${base}.lock`, base), `${hashOf(7)}l`);
    assert.equal(lookupKey(base), seenKey(base, base));
    assert.equal(lookupKey(`${base}.lock`), seenKey(`${base}.lock`, base));
  });
});

void describe('SeenEntries', () => {
  void test('remembers a listing and nothing else', () => {
    const seen = new SeenEntries();
    seen.reset([3, 1, 2].map(pathKey));
    for (const i of [1, 2, 3]) assert.ok(seen.has(pathKey(i)), `key ${i}`);
    for (const i of [0, 4, 1000]) assert.ok(!seen.has(pathKey(i)), `key ${i}`);
    assert.ok(!seen.has(`${hashOf(1)}l`), 'the .lock of a listed path is another entry');
    assert.ok(!seen.has('short'), 'a key of the wrong length is never seen');
    assert.equal(seen.size, 3);
  });

  void test('duplicates in a listing are stored once', () => {
    const seen = new SeenEntries();
    seen.reset([pathKey(1), pathKey(2), pathKey(1), pathKey(2), pathKey(3)]);
    assert.equal(seen.size, 3);
    assert.equal(seen.bytes, 3 * 20);
    for (const i of [1, 2, 3]) assert.ok(seen.has(pathKey(i)));
  });

  void test('a path removed and added again, in the listing or not', () => {
    const seen = new SeenEntries();
    seen.reset([pathKey(1)]);
    seen.delete(pathKey(1));
    assert.ok(!seen.has(pathKey(1)), 'deleted from the listing');
    seen.add(pathKey(1));
    assert.ok(seen.has(pathKey(1)), 'added back');
    seen.add(pathKey(2));
    assert.ok(seen.has(pathKey(2)), 'added beside the listing');
    seen.delete(pathKey(2));
    assert.ok(!seen.has(pathKey(2)), 'and deleted again');
    assert.equal(seen.size, 1);
  });

  void test('a new listing replaces what was added and deleted', () => {
    const seen = new SeenEntries();
    seen.reset([pathKey(1), pathKey(2)]);
    seen.delete(pathKey(1));
    seen.add(pathKey(5));
    seen.reset([pathKey(1), pathKey(3)]);
    assert.deepEqual(
      [1, 2, 3, 5].map((i) => seen.has(pathKey(i))),
      [true, false, true, false],
    );
  });

  void test('every key of a large listing is found, every other one is not (20 bytes a key)', () => {
    const seen = new SeenEntries();
    const n = 100_000;
    seen.reset(Array.from({ length: n }, (_, i) => pathKey(2 * i)));
    assert.equal(seen.bytes, n * 20);
    for (let i = 0; i < n; i++) {
      if (!seen.has(pathKey(2 * i))) assert.fail(`listed key ${2 * i} not found`);
      if (seen.has(pathKey(2 * i + 1))) assert.fail(`unlisted key ${2 * i + 1} found`);
    }
  });

  void test('a key of the wrong length, kind or alphabet is refused', () => {
    assert.throws(() => new SeenEntries().reset(['abc']), RangeError);
    assert.throws(() => new SeenEntries().reset([`${hashOf(1)}x`]), RangeError);
    assert.throws(() => new SeenEntries().reset([`e${hashOf(1).slice(1)}p`]), RangeError);
  });

  void test('keys that differ in any one digit, first or last, are told apart', () => {
    // The packing keeps the characters' order (binary search) and all 5 bits of every digit.
    const seen = new SeenEntries();
    const zeros = '0'.repeat(32);
    const at = (i: number, c: string) => zeros.slice(0, i) + c + zeros.slice(i + 1);
    const listed = [0, 7, 8, 15, 31].map((i) => `${at(i, 'z')}p`);
    seen.reset([...listed, `${zeros}l`]);
    for (const k of listed) assert.ok(seen.has(k), k);
    assert.ok(seen.has(`${zeros}l`));
    assert.ok(!seen.has(`${zeros}p`), 'the path of a listed .lock is another entry');
    for (const i of [0, 7, 8, 15, 31]) assert.ok(!seen.has(`${at(i, 'y')}p`), `digit ${i} one lower`);
    for (const i of [1, 6, 9, 30]) assert.ok(!seen.has(`${at(i, 'z')}p`), `digit ${i}`);
    assert.ok(!seen.has(`${at(3, 'e')}p`), 'a character outside nix32 is never seen');
    assert.equal(seen.bytes, 6 * 20);
    seen.reset([`${at(20, 'h')}p`]); // h is 16: only the digit's top bit differs from 0
    assert.ok(!seen.has(`${zeros}p`));
  });
});
