// Golden vectors from Nix 2.8 on this machine (`nix-hash --type T --flat [--base32] FILE`,
// `nix hash file --type T --sri|--base64 FILE`) for the files 'abc' and 'hello loft\n', and the
// structured hash JSON of Nix's own test data (src/libutil-tests/data/hash/*.json).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatHashHex,
  formatHashNix32,
  formatHashSri,
  hashEquals,
  parseHash,
  sha256Hash,
  type HashAlgorithm,
} from '../../../src/format/hash.js';
import { FormatError } from '../../../src/errors.js';

interface Vector {
  algorithm: HashAlgorithm;
  hex: string;
  nix32: string;
  base64: string;
}
const VECTORS: Vector[] = [
  {
    algorithm: 'md5',
    hex: '900150983cd24fb0d6963f7d28e17f72',
    nix32: '3jgzhjhz9zjvbb0kyj7jc500ch',
    base64: 'kAFQmDzST7DWlj99KOF/cg==',
  },
  {
    algorithm: 'sha1',
    hex: 'a9993e364706816aba3e25717850c26c9cd0d89d',
    nix32: 'kpcd173cq987hw957sx6m0868wv3x6d9',
    base64: 'qZk+NkcGgWq6PiVxeFDCbJzQ2J0=',
  },
  {
    algorithm: 'sha256',
    hex: '947fc1ba22c385a8137866fbb19f43902c5082aacf6225d4e1a196bc2abad2f8',
    nix32: '1y6jp8mbr5m1w7a2aqngma150b4h8fgv3yv6g09si1f34axc2zwl',
    base64: 'lH/BuiLDhagTeGb7sZ9DkCxQgqrPYiXU4aGWvCq60vg=',
  },
  {
    algorithm: 'sha512',
    hex: '4295a8f88c8ca9fb382cfcdc9733b9db24c6acb47d5b1eca9eeb6b44c49138d0067948c4180e4bf99230a3d409464a74f2509145c895448c7bceb3767c100ed1',
    nix32:
      '38hw43wfsrwwywc8jawhicia3r78jj617aa6c4jz55hw66491whdl1qj7248szbkv51wnvxnjncc96vp4rrgp7w5hwgpaccikwai5a2',
    base64: 'QpWo+IyMqfs4LPzclzO52yTGrLR9Wx7KnutrRMSRONAGeUjEGA5L+ZIwo9QJRkp08lCRRciVRIx7zrN2fBAO0Q==',
  },
];

void describe('parseHash', () => {
  for (const v of VECTORS) {
    void test(`${v.algorithm}: SRI, typed nix32/hex/base64 and bare forms give the same digest`, () => {
      const forms = [
        `${v.algorithm}-${v.base64}`,
        `${v.algorithm}:${v.nix32}`,
        `${v.algorithm}:${v.hex}`,
        `${v.algorithm}:${v.hex.toUpperCase()}`,
        `${v.algorithm}:${v.base64}`,
      ];
      for (const f of forms) {
        const h = parseHash(f);
        assert.equal(h.algorithm, v.algorithm, f);
        assert.equal(h.digest.toString('hex'), v.hex, f);
      }
      for (const bare of [v.nix32, v.hex, v.base64]) {
        assert.equal(parseHash(bare, v.algorithm).digest.toString('hex'), v.hex, bare);
      }
    });

    void test(`${v.algorithm}: prints nix32, SRI and hex as Nix does`, () => {
      const h = parseHash(`${v.algorithm}:${v.hex}`);
      assert.equal(formatHashNix32(h), `${v.algorithm}:${v.nix32}`);
      assert.equal(formatHashSri(h), `${v.algorithm}-${v.base64}`);
      assert.equal(formatHashHex(h), `${v.algorithm}:${v.hex}`);
    });
  }

  void test('structured JSON hashes in every format (Nix 2.33, hash-v1)', () => {
    const hex = 'f0e4c2f76c58916ec258f246851bea091d14d4247a2fc3e18694461b1816e13b';
    const inputs = [
      { algorithm: 'sha256', format: 'base16', hash: hex },
      { algorithm: 'sha256', format: 'base64', hash: '8OTC92xYkW7CWPJGhRvqCR0U1CR6L8PhhpRGGxgW4Ts=' },
      { algorithm: 'sha256', format: 'nix32', hash: '0fz12qc1nillhvhw6bvs4ka18789x8dqaipjb316x4aqdkvw5r7h' },
      { algorithm: 'sha256', format: 'base32', hash: '0fz12qc1nillhvhw6bvs4ka18789x8dqaipjb316x4aqdkvw5r7h' },
      { algorithm: 'sha256', format: 'sri', hash: 'sha256-8OTC92xYkW7CWPJGhRvqCR0U1CR6L8PhhpRGGxgW4Ts=' },
      // Without "format" the hash text is read like a string hash (length picks the encoding).
      { algorithm: 'sha256', hash: '8OTC92xYkW7CWPJGhRvqCR0U1CR6L8PhhpRGGxgW4Ts=' },
      { algorithm: 'sha256', hash: 'sha256-8OTC92xYkW7CWPJGhRvqCR0U1CR6L8PhhpRGGxgW4Ts=' },
    ];
    for (const input of inputs) {
      const h = parseHash(input);
      assert.equal(h.algorithm, 'sha256', JSON.stringify(input));
      assert.equal(h.digest.toString('hex'), hex, JSON.stringify(input));
    }
  });

  void test('hashEquals and sha256Hash', () => {
    const a = parseHash('sha256-lH/BuiLDhagTeGb7sZ9DkCxQgqrPYiXU4aGWvCq60vg=');
    const b = sha256Hash(Buffer.from(VECTORS[2]!.hex, 'hex'));
    assert.ok(hashEquals(a, b));
    assert.ok(!hashEquals(a, sha256Hash(Buffer.alloc(32))));
    assert.ok(!hashEquals(parseHash(`md5:${VECTORS[0]!.hex}`), sha256Hash(Buffer.alloc(32))));
    assert.throws(() => sha256Hash(Buffer.alloc(20)), FormatError);
  });

  void test('malformed hashes throw FormatError', () => {
    const bad: unknown[] = [
      '',
      'sha256',
      'sha256:',
      `${VECTORS[2]!.nix32}`, // bare without a default algorithm
      'blake3-8OTC92xYkW7CWPJGhRvqCR0U1CR6L8PhhpRGGxgW4Ts=',
      'SHA256:1y6jp8mbr5m1w7a2aqngma150b4h8fgv3yv6g09si1f34axc2zwl',
      'sha256:1y6jp8mbr5m1w7a2aqngma150b4h8fgv3yv6g09si1f34axc2zw', // 51 chars
      'sha256:1y6jp8mbr5m1w7a2aqngma150b4h8fgv3yv6g09si1f34axc2zwe', // 'e' not nix32
      'sha256:9y6jp8mbr5m1w7a2aqngma150b4h8fgv3yv6g09si1f34axc2zwl', // leftover bits set
      'sha256:947fc1ba22c385a8137866fbb19f43902c5082aacf6225d4e1a196bc2abad2fg', // 'g' not hex
      'sha256-lH/BuiLDhagTeGb7sZ9DkCxQgqrPYiXU4aGWvCq60v=', // short base64
      'sha256-lH/BuiLDhagTeGb7sZ9DkCxQgqrPYiXU4aGWvCq60vh=', // non-canonical padding bits
      'sha256-lH/BuiLDhagTeGb7sZ9DkCxQgqrPYiXU4aGWvCq60v!=',
      'md5-lH/BuiLDhagTeGb7sZ9DkCxQgqrPYiXU4aGWvCq60vg=', // sha256-sized digest under md5
      42,
      null,
      ['sha256-x'],
      { algorithm: 'sha256' },
      { algorithm: 'blake3', format: 'base16', hash: 'ab' },
      { algorithm: 'sha256', format: 'base58', hash: 'ab' },
      { algorithm: 'sha256', format: 'base16', hash: 'abcd' },
      { algorithm: 'sha512', format: 'sri', hash: 'sha256-8OTC92xYkW7CWPJGhRvqCR0U1CR6L8PhhpRGGxgW4Ts=' },
    ];
    for (const input of bad) assert.throws(() => parseHash(input), FormatError, JSON.stringify(input));
  });
});
