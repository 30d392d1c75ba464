// Golden vectors from Nix 2.8 on this machine: `nix-hash --type T --to-base32 <hex>` and
// `nix-hash --type T --flat [--base32] FILE` for the files '' / 'abc' / 'hello loft\n'.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeNixBase32, encodeNixBase32, nixBase32Length } from '../../../src/format/nix-base32.js';
import { FormatError } from '../../../src/errors.js';

const VECTORS: Array<[string, string]> = [
  // sha256
  [
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    '0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73',
  ],
  [
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    '1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s',
  ],
  [
    '947fc1ba22c385a8137866fbb19f43902c5082aacf6225d4e1a196bc2abad2f8',
    '1y6jp8mbr5m1w7a2aqngma150b4h8fgv3yv6g09si1f34axc2zwl',
  ],
  [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0000000000000000000000000000000000000000000000000000',
  ],
  [
    'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
    '1zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz',
  ],
  [
    '0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20',
    '080z3qfiq6qs34c1f5hm2h9i448h1w70s30b184hh1q60l2060h1',
  ],
  // md5, sha1, sha512
  ['d41d8cd98f00b204e9800998ecf8427e', '3y8bwfr609h3lh9ch0izcqq7fl'],
  ['ffffffffffffffffffffffffffffffff', '7zzzzzzzzzzzzzzzzzzzzzzzzz'],
  ['a9993e364706816aba3e25717850c26c9cd0d89d', 'kpcd173cq987hw957sx6m0868wv3x6d9'],
  ['ffffffffffffffffffffffffffffffffffffffff', 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'],
  [
    'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    '2gs8k559z4rlahfx0y688s49m2vvszylcikrfinm30ly9rak69236nkam5ydvly1ai7xac99vxfc4ii84hawjbk876blyk1jfhkbbyx',
  ],
];

void describe('nix base-32', () => {
  void test('encodes golden vectors exactly as Nix prints them', () => {
    for (const [hex, nix32] of VECTORS) assert.equal(encodeNixBase32(Buffer.from(hex, 'hex')), nix32, hex);
  });

  void test('decodes golden vectors back to the bytes', () => {
    for (const [hex, nix32] of VECTORS) assert.equal(decodeNixBase32(nix32).toString('hex'), hex, nix32);
  });

  void test('a sha256 digest gives 52 characters, a store path hash (20 bytes) 32', () => {
    assert.equal(nixBase32Length(32), 52);
    assert.equal(nixBase32Length(20), 32);
    assert.equal(encodeNixBase32(Buffer.alloc(32, 7)).length, 52);
  });

  void test('round-trips any byte string', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), (bytes) => {
        assert.deepEqual(new Uint8Array(decodeNixBase32(encodeNixBase32(bytes))), bytes);
      }),
    );
  });

  void test('rejects characters outside the alphabet (e o t u, upper case, padding)', () => {
    const good = VECTORS[2]![1];
    for (const bad of ['e', 'o', 't', 'u', 'A', '=', ' ']) {
      const s = bad + good.slice(1);
      assert.throws(() => decodeNixBase32(s), FormatError, s);
    }
  });

  void test('rejects a length that encodes no whole number of bytes', () => {
    for (const len of [1, 3, 6, 51, 54]) {
      assert.throws(
        () => decodeNixBase32('0'.repeat(len)),
        (e: unknown) => e instanceof FormatError && /length/.test(e.message),
      );
    }
  });

  void test('rejects set bits above the last byte (non-zero leftover bits)', () => {
    // 52 chars hold 260 bits for 256: the first character may only be 0 or 1.
    assert.throws(() => decodeNixBase32('2' + '0'.repeat(51)), FormatError);
    assert.throws(() => decodeNixBase32('z' + 'z'.repeat(51)), FormatError);
    assert.equal(decodeNixBase32('1' + '0'.repeat(51)).at(-1), 0x80);
  });
});
