import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNixCacheInfo } from '../../../src/format/nix-cache-info.js';
import { cacheInfoAsLines, optionalObjectKind } from '../../../src/storage/http-cache-shapes.js';
import { retryAfterOf } from '../../../src/storage/http-client.js';

describe('cacheInfoAsLines', () => {
  test("nix-stored's JSON nix-cache-info becomes Nix's lines, which parse", () => {
    const json = Buffer.from('{"Priority":30,"StoreDir":"/nix/store","WantMassQuery":1}');
    const lines = cacheInfoAsLines(json).toString();
    assert.equal(lines, 'Priority: 30\nStoreDir: /nix/store\nWantMassQuery: 1\n');
    const info = parseNixCacheInfo(lines);
    assert.deepEqual([info.storeDir, info.wantMassQuery, info.priority], ['/nix/store', true, 30]);
  });

  test("Nix's own form and bodies that are not a JSON object pass unchanged", () => {
    for (const text of ['StoreDir: /nix/store\n', '[1,2]', '{not json', '']) {
      assert.equal(cacheInfoAsLines(Buffer.from(text)).toString(), text);
    }
  });

  test('values that would break the line form are left out', () => {
    const body = Buffer.from('{"StoreDir":"/nix/store\\nPriority: 1","a:b":1,"Ok":true}');
    assert.equal(cacheInfoAsLines(body).toString(), 'Ok: 1\n');
  });
});

describe('optionalObjectKind', () => {
  test('extras a cache can live without, and what it cannot', () => {
    assert.equal(optionalObjectKind('nix-cache-info'), 'nix-cache-info');
    assert.equal(optionalObjectKind('log/abc-foo.drv'), 'build logs');
    assert.equal(optionalObjectKind('aghv8shzw76p3aakd1zl1scsx4l5xf6l.ls'), 'file listings (.ls)');
    assert.equal(optionalObjectKind('realisations/sha256:x!out.doi'), 'realisations');
    assert.equal(optionalObjectKind('aghv8shzw76p3aakd1zl1scsx4l5xf6l.narinfo'), undefined);
    assert.equal(optionalObjectKind('nar/x.nar.zst'), undefined);
    assert.equal(optionalObjectKind('.loft/clock'), undefined);
  });
});

describe('retryAfterOf', () => {
  test('seconds, an HTTP date, a cap, and unusable values', () => {
    const now = Date.parse('2026-12-06T12:00:00Z');
    assert.equal(retryAfterOf('3', now), 3000);
    assert.equal(retryAfterOf('Sun, 06 Dec 2026 12:00:05 GMT', now), 5000);
    assert.equal(retryAfterOf('86400', now), 120_000);
    assert.equal(retryAfterOf(undefined, now), undefined);
    assert.equal(retryAfterOf('soon', now), undefined);
    assert.equal(retryAfterOf('Sun, 06 Dec 2026 11:00:00 GMT', now), undefined);
  });
});
