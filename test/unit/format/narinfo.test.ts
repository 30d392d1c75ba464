// Narinfos written by real `nix copy` (Nix 2.8) and in the original Loft's layout: see
// test/fixtures/narinfo/README.md.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseNarInfo, renderNarInfo, type NarInfo } from '../../../src/format/narinfo.js';
import { formatHashNix32, parseHash } from '../../../src/format/hash.js';
import { FormatError } from '../../../src/errors.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../../fixtures/narinfo/${name}`, import.meta.url), 'utf8');

const NIX_WRITTEN = [
  'nix-copy-none-fixture-file.narinfo',
  'nix-copy-none-leaf.narinfo',
  'nix-copy-none-dep.narinfo',
  'nix-copy-none-top.narinfo',
  'nix-copy-xz-top.narinfo',
];

const TOP_NARHASH = 'sha256:0dn1dpc0zxq1kcg0mn548ky5plw5fqgngqryrbl7gkzzpfdipp29';
const TOP_SIG =
  'loft-test-1:eDhUuMthF/D1Slj6G7YHMwVruLvkLsdpHFh9R71oPugpA5n4Y04nqoTyAnuOLfUGgWuu8UK+kswF/jqsHDkuCA==';

void describe('narinfo', () => {
  void test('parses what nix copy wrote (xz, deriver, self-reference)', () => {
    const n = parseNarInfo(fixture('nix-copy-xz-top.narinfo'));
    assert.equal(n.storePath, '/nix/store/y1bzmgmda5pysd2ip1qd1xkc7k5gghv5-loft-fixture-top');
    assert.equal(n.url, 'nar/0hssfdy9py3dysx9d5q4qn2y0nnybqqfii4zx1hnxnz0knr03gjg.nar.xz');
    assert.equal(n.compression, 'xz');
    assert.equal(
      n.fileHash && formatHashNix32(n.fileHash),
      'sha256:0hssfdy9py3dysx9d5q4qn2y0nnybqqfii4zx1hnxnz0knr03gjg',
    );
    assert.equal(n.fileSize, 268);
    assert.equal(formatHashNix32(n.narHash), TOP_NARHASH);
    assert.equal(n.narSize, 600);
    assert.deepEqual(n.references, [
      'bfxh95z7bcxlr0q9x9d0nqypgwlsf36x-loft-fixture-dep',
      'y1bzmgmda5pysd2ip1qd1xkc7k5gghv5-loft-fixture-top',
    ]);
    assert.equal(n.deriver, 'vkinr4di40x8zlnxx215divgxn6mk5a0-loft-fixture-top.drv');
    assert.deepEqual(n.signatures, [TOP_SIG]);
    assert.equal(n.ca, undefined);
    assert.deepEqual(n.extra, []);
  });

  void test('parses an empty References line and CA', () => {
    const n = parseNarInfo(fixture('nix-copy-none-fixture-file.narinfo'));
    assert.deepEqual(n.references, []);
    assert.equal(n.compression, 'none');
    assert.equal(n.ca, 'fixed:r:sha256:141an74baprnx5bf05yha8rygdxlzqa1l0zzl6yjrrvbsm0xpmki');
    assert.equal(n.deriver, undefined);
  });

  void test('render(parse(x)) is byte for byte what nix copy wrote', () => {
    for (const name of NIX_WRITTEN) {
      const text = fixture(name);
      assert.equal(renderNarInfo(parseNarInfo(text)), text, name);
    }
  });

  void test('renders a NarInfo built from scratch exactly as Nix does', () => {
    const n: NarInfo = {
      storePath: '/nix/store/y1bzmgmda5pysd2ip1qd1xkc7k5gghv5-loft-fixture-top',
      url: 'nar/0dn1dpc0zxq1kcg0mn548ky5plw5fqgngqryrbl7gkzzpfdipp29.nar',
      compression: 'none',
      fileHash: parseHash('sha256-Sdwbm7v/z3foyj7jZx92hdNb/ESk2AoemwH3D9htwTY='),
      fileSize: 600,
      narHash: parseHash('sha256-Sdwbm7v/z3foyj7jZx92hdNb/ESk2AoemwH3D9htwTY='),
      narSize: 600,
      references: [
        'bfxh95z7bcxlr0q9x9d0nqypgwlsf36x-loft-fixture-dep',
        'y1bzmgmda5pysd2ip1qd1xkc7k5gghv5-loft-fixture-top',
      ],
      deriver: 'vkinr4di40x8zlnxx215divgxn6mk5a0-loft-fixture-top.drv',
      signatures: [TOP_SIG],
      extra: [],
    };
    assert.equal(renderNarInfo(n), fixture('nix-copy-none-top.narinfo'));
  });

  void test("parses the original Loft's order (CA before Sig, own Sig then existing ones, no Deriver)", () => {
    const n = parseNarInfo(fixture('loft-original-fixture-file.narinfo'));
    assert.equal(n.compression, 'zstd');
    assert.equal(
      n.url,
      'nar/fid14rzhsmnh0gnybql68w3capggz9ih-141an74baprnx5bf05yha8rygdxlzqa1l0zzl6yjrrvbsm0xpmki.nar.zst',
    );
    assert.equal(n.fileSize, 113);
    assert.equal(n.ca, 'fixed:r:sha256:141an74baprnx5bf05yha8rygdxlzqa1l0zzl6yjrrvbsm0xpmki');
    assert.deepEqual(
      n.signatures.map((s) => s.split(':')[0]),
      ['loft-test-2', 'loft-test-1'],
    );
    const dep = parseNarInfo(fixture('loft-original-dep.narinfo'));
    assert.deepEqual(dep.references, ['7jiapimsqgra5j51il78hjgz8rfjgpri-loft-fixture-leaf.txt']);
    assert.equal(dep.deriver, undefined);
    // Re-rendered in Nix's order it still parses to the same thing.
    for (const x of [n, dep]) assert.deepEqual(parseNarInfo(renderNarInfo(x)), x);
  });

  void test('unknown keys are kept and written back after the known ones', () => {
    const text =
      fixture('nix-copy-none-dep.narinfo').replace('NarSize: 544\n', 'NarSize: 544\nX-Future: a: b\n') +
      'Extra: 1\n';
    const n = parseNarInfo(text);
    assert.deepEqual(n.extra, [
      ['X-Future', 'a: b'],
      ['Extra', '1'],
    ]);
    const again = renderNarInfo(n);
    assert.ok(again.endsWith('X-Future: a: b\nExtra: 1\n'), again);
    assert.deepEqual(parseNarInfo(again), n);
  });

  void test('missing Compression means bzip2 (as Nix reads it); CRLF lines are accepted', () => {
    const text = fixture('nix-copy-none-dep.narinfo').replace('Compression: none\n', '');
    assert.equal(parseNarInfo(text).compression, 'bzip2');
    assert.equal(parseNarInfo(fixture('nix-copy-none-dep.narinfo').replace(/\n/g, '\r\n')).narSize, 544);
  });

  void test('honours the store dir', () => {
    const text = fixture('nix-copy-none-dep.narinfo').replace('/nix/store/', '/srv/store/');
    assert.equal(
      parseNarInfo(text, '/srv/store').storePath,
      '/srv/store/bfxh95z7bcxlr0q9x9d0nqypgwlsf36x-loft-fixture-dep',
    );
    assert.throws(() => parseNarInfo(text), FormatError);
  });

  void test('malformed narinfos throw FormatError', () => {
    const good = fixture('nix-copy-none-dep.narinfo');
    const drop = (key: string): string => good.replace(new RegExp(`^${key}: .*\\n`, 'm'), '');
    const swap = (from: string, to: string): string => {
      assert.ok(good.includes(from), from);
      return good.replace(from, to);
    };
    const cases: Record<string, string> = {
      'no StorePath': drop('StorePath'),
      'no URL': drop('URL'),
      'no NarHash': drop('NarHash'),
      'no NarSize': drop('NarSize'),
      'NarSize not a number': swap('NarSize: 544', 'NarSize: 5x4'),
      'NarSize negative': swap('NarSize: 544', 'NarSize: -544'),
      'FileSize empty': swap('FileSize: 544', 'FileSize: '),
      'FileSize huge': swap('FileSize: 544', 'FileSize: 99999999999999999999'),
      'bad NarHash': swap('NarHash: sha256:0r2a', 'NarHash: sha256:0e2a'),
      'bad FileHash': swap('FileHash: sha256:', 'FileHash: blake3:'),
      'line without ": "': swap('NarSize: 544', 'NarSize:544'),
      'blank line': swap('NarSize: 544\n', 'NarSize: 544\n\n'),
      'bad StorePath': swap('StorePath: /nix/store/', 'StorePath: /var/lib/'),
      'bad reference': swap('References: 7jiap', 'References: /nix/store/7jiap'),
      'bad Deriver': swap('Deriver: a2h7', 'Deriver: .a2h7'),
      'StorePath twice': `StorePath: /nix/store/7jiapimsqgra5j51il78hjgz8rfjgpri-x\n${good}`,
      empty: '',
    };
    for (const [what, text] of Object.entries(cases))
      assert.throws(() => parseNarInfo(text), FormatError, what);
  });

  void test('render refuses values that would break the line format', () => {
    const n = parseNarInfo(fixture('nix-copy-none-dep.narinfo'));
    assert.throws(() => renderNarInfo({ ...n, signatures: ['a:b\nStorePath: x'] }), FormatError);
    assert.throws(() => renderNarInfo({ ...n, extra: [['Bad: key', 'v']] }), FormatError);
  });
});
