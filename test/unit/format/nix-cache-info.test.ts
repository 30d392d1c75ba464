import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseNixCacheInfo, renderNixCacheInfo } from '../../../src/format/nix-cache-info.js';
import { FormatError } from '../../../src/errors.js';

void describe('nix-cache-info', () => {
  void test("renders the original Loft's file", () => {
    const text = renderNixCacheInfo({ storeDir: '/nix/store', wantMassQuery: true, priority: 30, extra: [] });
    assert.equal(text, 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n');
    assert.deepEqual(parseNixCacheInfo(text), {
      storeDir: '/nix/store',
      wantMassQuery: true,
      priority: 30,
      extra: [],
    });
  });

  void test('parses the file nix copy wrote (StoreDir only)', () => {
    const text = readFileSync(
      new URL('../../fixtures/narinfo/nix-copy.nix-cache-info', import.meta.url),
      'utf8',
    );
    assert.deepEqual(parseNixCacheInfo(text), { storeDir: '/nix/store', wantMassQuery: false, extra: [] });
  });

  void test('keeps unknown keys, trims like Nix, tolerates blank lines and CRLF', () => {
    const info = parseNixCacheInfo(
      'StoreDir:/gnu/store\r\n\nWantMassQuery: 0\nX-Thing:  a b \nPriority: 40\n',
    );
    assert.deepEqual(info, {
      storeDir: '/gnu/store',
      wantMassQuery: false,
      priority: 40,
      extra: [['X-Thing', 'a b']],
    });
    assert.equal(
      renderNixCacheInfo(info),
      'StoreDir: /gnu/store\nWantMassQuery: 0\nPriority: 40\nX-Thing: a b\n',
    );
    assert.equal(parseNixCacheInfo('WantMassQuery: 1\n', '/srv/store').storeDir, '/srv/store');
  });

  void test('malformed files and values throw FormatError', () => {
    for (const text of [
      'StoreDir /nix/store\n',
      'WantMassQuery: yes\n',
      'Priority: high\n',
      'Priority: -1\n',
      'StoreDir: relative\n',
      'StoreDir: /a\nStoreDir: /b\n',
      ': x\n',
    ]) {
      assert.throws(() => parseNixCacheInfo(text), FormatError, text);
    }
    const base = { storeDir: '/nix/store', wantMassQuery: true, extra: [] as Array<[string, string]> };
    assert.throws(() => renderNixCacheInfo({ ...base, priority: 1.5 }), FormatError);
    assert.throws(() => renderNixCacheInfo({ ...base, extra: [['A', 'b\nStoreDir: /x']] }), FormatError);
  });
});
