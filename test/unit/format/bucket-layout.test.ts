// The bucket layout's keys, checked against a NAR key the original Loft wrote and the rules Nix
// follows for narinfo keys (`<hash part>.narinfo` at the cache root).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  buildLogKey,
  hashPartOfNarinfoKey,
  listingKey,
  narExtension,
  narinfoKey,
  narKey,
} from '../../../src/format/bucket-layout.js';
import { parseHash } from '../../../src/format/hash.js';

const HASH_PART = 'b6gvzjyb2pg0kjfwrjmg1vfhh54ad73z';

test('narinfo, listing and build log keys', () => {
  assert.equal(narinfoKey(HASH_PART), `${HASH_PART}.narinfo`);
  assert.equal(listingKey(HASH_PART), `${HASH_PART}.ls`);
  assert.equal(buildLogKey(`${HASH_PART}-hello-2.12.drv`), `log/${HASH_PART}-hello-2.12.drv`);
});

test('the NAR key is nar/<hash part>-<NarHash in nix32>.<ext>, the original Loft layout', () => {
  const narHash = parseHash('sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s');
  assert.equal(
    narKey(HASH_PART, narHash, 'zstd'),
    `nar/${HASH_PART}-1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s.nar.zst`,
  );
  assert.deepEqual((['zstd', 'xz', 'none'] as const).map(narExtension), ['nar.zst', 'nar.xz', 'nar']);
});

test('only a root-level <32 nix32 chars>.narinfo key names a path', () => {
  assert.equal(hashPartOfNarinfoKey(`${HASH_PART}.narinfo`), HASH_PART);
  for (const key of [
    `nar/${HASH_PART}.narinfo`,
    `${HASH_PART}.narinfo.tmp`,
    `${HASH_PART.slice(1)}.narinfo`,
    `${HASH_PART.slice(0, 31)}e.narinfo`, // e is not a nix32 digit
    `${HASH_PART.toUpperCase()}.narinfo`,
    'nix-cache-info',
  ]) {
    assert.equal(hashPartOfNarinfoKey(key), undefined, key);
  }
});
