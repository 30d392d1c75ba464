// The pure narinfo check behind `loft verify`, on a narinfo real Nix 2.8 wrote and signed
// (test/fixtures/narinfo/README.md), with the listing around it varied one defect at a time.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { checkNarinfo, type NarinfoCheckInput } from '../../../src/format/narinfo-check.js';
import { parsePublicKey } from '../../../src/format/signing-key.js';

const dir = new URL('../../fixtures/narinfo/', import.meta.url);
const TOP = readFileSync(new URL('nix-copy-none-top.narinfo', dir), 'utf8');
const KEY1 = parsePublicKey(readFileSync(new URL('TEST-ONLY-loft-test-1.public-key', dir), 'utf8'));
const KEY2 = parsePublicKey(readFileSync(new URL('TEST-ONLY-loft-test-2.public-key', dir), 'utf8'));
const HASH = 'y1bzmgmda5pysd2ip1qd1xkc7k5gghv5';
const NAR = 'nar/0dn1dpc0zxq1kcg0mn548ky5plw5fqgngqryrbl7gkzzpfdipp29.nar';

function input(over: Partial<NarinfoCheckInput> = {}): NarinfoCheckInput {
  const sizes = new Map([
    [`${HASH}.narinfo`, TOP.length],
    ['bfxh95z7bcxlr0q9x9d0nqypgwlsf36x.narinfo', 500],
    [NAR, 600],
  ]);
  return { hashPart: HASH, text: TOP, sizes, storeDir: '/nix/store', publicKey: KEY1, ...over };
}
const kinds = (i: NarinfoCheckInput) => checkNarinfo(i).problems.map((p) => p.kind);

void describe('checkNarinfo', () => {
  void test('a narinfo Nix wrote and signed, with its NAR and references present, is clean', () => {
    const c = checkNarinfo(input());
    assert.deepEqual(c.problems, []);
    assert.equal(c.narKey, NAR);
  });

  void test('each defect is one problem of its kind', () => {
    const without = (key: string) => {
      const sizes = new Map(input().sizes);
      sizes.delete(key);
      return input({ sizes });
    };
    assert.deepEqual(kinds(without(NAR)), ['nar-missing']);
    assert.deepEqual(kinds(input({ sizes: new Map([...input().sizes, [NAR, 599]]) })), ['nar-size']);
    const missing = checkNarinfo(without('bfxh95z7bcxlr0q9x9d0nqypgwlsf36x.narinfo')).problems;
    assert.deepEqual(
      missing.map((p) => [p.kind, p.reference]),
      [['missing-reference', 'bfxh95z7bcxlr0q9x9d0nqypgwlsf36x-loft-fixture-dep']],
    );
    assert.deepEqual(kinds(input({ publicKey: KEY2 })), ['unsigned']);
    assert.deepEqual(kinds(input({ text: TOP.replace(/^Sig: .*\n/m, '') })), ['unsigned']);
    assert.deepEqual(kinds(input({ text: TOP.replace('NarSize: 600', 'NarSize: 601') })), ['bad-signature']);
    assert.deepEqual(kinds(input({ text: TOP.replace('Compression: none', 'Compression: lzma9') })), [
      'unknown-compression',
    ]);
    assert.deepEqual(kinds(input({ text: '\u00ff\u0000garbage' })), ['unparsable']);
    assert.deepEqual(kinds(input({ hashPart: 'bfxh95z7bcxlr0q9x9d0nqypgwlsf36x' })), ['wrong-path']);
  });

  void test('without a key, signatures are not judged; a URL on another host names no object', () => {
    const { publicKey: _, ...noKey } = input();
    assert.deepEqual(kinds({ ...noKey, text: TOP.replace(/^Sig: .*\n/m, '') }), []);
    const remote = checkNarinfo(input({ text: TOP.replace(`URL: ${NAR}`, 'URL: https://elsewhere/x.nar') }));
    assert.deepEqual(remote.problems, []);
    assert.equal(remote.narKey, undefined);
  });
});
