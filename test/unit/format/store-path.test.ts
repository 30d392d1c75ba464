import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  hashPartOf,
  isStorePath,
  isValidStorePathName,
  parseStorePath,
  parseStorePathBaseName,
  storePathBaseName,
} from '../../../src/format/store-path.js';
import { InvalidPathError } from '../../../src/errors.js';

// Real paths made on this machine (see test/fixtures/path-info/README.md).
const TOP = '/nix/store/y1bzmgmda5pysd2ip1qd1xkc7k5gghv5-loft-fixture-top';
const HASH = 'y1bzmgmda5pysd2ip1qd1xkc7k5gghv5';

void describe('parseStorePath', () => {
  void test('splits a store path into its parts', () => {
    assert.deepEqual(parseStorePath(TOP), {
      storeDir: '/nix/store',
      hashPart: HASH,
      name: 'loft-fixture-top',
      path: TOP,
    });
    assert.equal(storePathBaseName(TOP), `${HASH}-loft-fixture-top`);
    assert.equal(hashPartOf(TOP), HASH);
  });

  void test('uses the store dir it is given, not /nix/store', () => {
    const p = parseStorePath(`/srv/nix/store/${HASH}-x`, '/srv/nix/store');
    assert.equal(p.storeDir, '/srv/nix/store');
    assert.equal(p.name, 'x');
    assert.equal(
      parseStorePath(`/srv/nix/store/${HASH}-x`, '/srv/nix/store/').path,
      `/srv/nix/store/${HASH}-x`,
    );
    assert.throws(() => parseStorePath(TOP, '/srv/nix/store'), InvalidPathError);
    assert.throws(() => parseStorePath(`/srv/nix/store/${HASH}-x`), InvalidPathError);
    assert.throws(() => parseStorePath(TOP, 'nix/store'), InvalidPathError);
  });

  void test('base names resolve against the store dir', () => {
    assert.equal(parseStorePathBaseName(`${HASH}-loft-fixture-top`).path, TOP);
    assert.equal(parseStorePathBaseName(`${HASH}-a`, '/gnu/store').path, `/gnu/store/${HASH}-a`);
    assert.throws(() => parseStorePathBaseName(TOP), InvalidPathError);
  });

  void test('accepts every character Nix allows in a name, and names up to 211 characters', () => {
    for (const name of ['a', 'A-Z_a.z+0=9?', 'foo.drv', 'x'.repeat(211), '-', 'a..b']) {
      assert.equal(parseStorePath(`/nix/store/${HASH}-${name}`).name, name);
      assert.ok(isValidStorePathName(name), name);
    }
  });

  void test('rejects malformed paths with InvalidPathError carrying the path', () => {
    const bad = [
      '',
      '/nix/store',
      '/nix/store/',
      `/nix/store/${HASH}`,
      `/nix/store/${HASH}-`,
      `/nix/store/${HASH}_name`,
      `/nix/store/${HASH.slice(1)}-name`, // 31-character hash
      `/nix/store/${HASH.slice(0, 31)}e-name`, // 'e' is not nix32
      `/nix/store/${HASH.toUpperCase()}-name`,
      `/nix/store/${HASH}-.hidden`,
      `/nix/store/${HASH}-${'x'.repeat(212)}`,
      `/nix/store/${HASH}-with space`,
      `/nix/store/${HASH}-a/b`,
      `/nix/store/${HASH}-ünïcode`,
      `/nix/storex/${HASH}-name`,
      `nix/store/${HASH}-name`,
      `/nix/store/sub/${HASH}-name`,
    ];
    for (const p of bad) {
      assert.throws(
        () => parseStorePath(p),
        (e: unknown) => e instanceof InvalidPathError && e.path === p && !e.message.includes('\n'),
        p,
      );
      assert.equal(isStorePath(p), false, p);
    }
    assert.ok(isStorePath(TOP));
  });

  void test('isValidStorePathName rejects what Nix rejects', () => {
    for (const name of ['', '.', '..', '.x', 'x'.repeat(212), 'a/b', 'a b', 'a:b', 'a@b']) {
      assert.equal(isValidStorePathName(name), false, name);
    }
  });
});
