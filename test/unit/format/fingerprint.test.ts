// The fingerprint texts below are what Nix 2.8 signed: the signatures `nix store sign` made over
// them verify (see signing-key.test.ts, which checks our signature equals Nix's byte for byte).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprintOfParsed, fingerprintPath } from '../../../src/format/fingerprint.js';
import { parseHash } from '../../../src/format/hash.js';
import { FormatError } from '../../../src/errors.js';

const S = '/nix/store/';
const LEAF = `${S}7jiapimsqgra5j51il78hjgz8rfjgpri-loft-fixture-leaf.txt`;
const DEP = `${S}bfxh95z7bcxlr0q9x9d0nqypgwlsf36x-loft-fixture-dep`;
const TOP = `${S}y1bzmgmda5pysd2ip1qd1xkc7k5gghv5-loft-fixture-top`;
const TOP_HASH = parseHash('sha256-Sdwbm7v/z3foyj7jZx92hdNb/ESk2AoemwH3D9htwTY=');

void describe('fingerprintPath', () => {
  void test('matches Nix for a path with references (self included)', () => {
    assert.equal(
      fingerprintPath(TOP, TOP_HASH, 600, [DEP, TOP]),
      `1;${TOP};sha256:0dn1dpc0zxq1kcg0mn548ky5plw5fqgngqryrbl7gkzzpfdipp29;600;${DEP},${TOP}`,
    );
  });

  void test('matches Nix for a path without references (trailing empty field, no CA)', () => {
    const h = parseHash('sha256-nzu0K0LIc/eJSNM8l/pYb7KLlDijumkULMBe+H0CXgI=');
    assert.equal(
      fingerprintPath(LEAF, h, 152, []),
      `1;${LEAF};sha256:00jy09yzhpn05ha6kfm372a8pckgb3x9fg6k924zfwy888mv8fwz;152;`,
    );
  });

  void test("sorts and de-duplicates references like Nix's StorePathSet", () => {
    const expected = fingerprintPath(TOP, TOP_HASH, 600, [DEP, TOP]);
    assert.equal(fingerprintPath(TOP, TOP_HASH, 600, [TOP, DEP, TOP]), expected);
  });

  void test('for a PathInfo (parsed already): the same text as Nix, sorted and de-duplicated alike', () => {
    assert.equal(
      fingerprintOfParsed(TOP, TOP_HASH, 600, [TOP, DEP, TOP]),
      `1;${TOP};sha256:0dn1dpc0zxq1kcg0mn548ky5plw5fqgngqryrbl7gkzzpfdipp29;600;${DEP},${TOP}`,
    );
    assert.throws(() => fingerprintOfParsed(TOP, parseHash(`sha1:${'0'.repeat(32)}`), 600, []), FormatError);
  });

  void test('uses the store dir it is given', () => {
    const dir = '/srv/store';
    const p = `${dir}/y1bzmgmda5pysd2ip1qd1xkc7k5gghv5-x`;
    assert.match(fingerprintPath(p, TOP_HASH, 1, [p], dir), /^1;\/srv\/store\/y1bz.*;1;\/srv\/store\/y1bz/);
    assert.throws(() => fingerprintPath(p, TOP_HASH, 1, []), FormatError);
  });

  void test('refuses what Nix refuses', () => {
    const cases: Array<[string, () => string]> = [
      ['md5 NarHash', () => fingerprintPath(TOP, parseHash('md5:900150983cd24fb0d6963f7d28e17f72'), 600, [])],
      [
        'sha512 NarHash',
        () => fingerprintPath(TOP, { algorithm: 'sha512', digest: Buffer.alloc(64) }, 600, []),
      ],
      [
        'base-name reference',
        () => fingerprintPath(TOP, TOP_HASH, 600, ['bfxh95z7bcxlr0q9x9d0nqypgwlsf36x-loft-fixture-dep']),
      ],
      ['non-store reference', () => fingerprintPath(TOP, TOP_HASH, 600, ['/usr/bin/sh'])],
      ['reference with a comma', () => fingerprintPath(TOP, TOP_HASH, 600, [`${DEP},x`])],
      ['bad path', () => fingerprintPath('/nix/store/short-x', TOP_HASH, 600, [])],
      ['negative size', () => fingerprintPath(TOP, TOP_HASH, -1, [])],
      ['fractional size', () => fingerprintPath(TOP, TOP_HASH, 1.5, [])],
    ];
    for (const [what, f] of cases) assert.throws(f, FormatError, what);
  });
});
