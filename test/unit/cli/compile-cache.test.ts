// Where one-off commands keep V8's compiled code (src/cli/compile-cache.ts), with a recording
// stand-in for module.enableCompileCache; the real cache is checked on the built CLI in
// test/integration/compile-cache.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cacheCompiledCode, type CompileCacheDeps } from '../../../src/cli/compile-cache.js';

function deps(edits: Partial<CompileCacheDeps> = {}, status = 1) {
  const enabled: string[] = [];
  const d: CompileCacheDeps = {
    enable: (dir) => {
      enabled.push(dir);
      return { status };
    },
    ownerOf: (dir) => (dir === '/var/lib/loft' ? 990 : 0),
    uid: 990,
    ...edits,
  };
  return { d, enabled };
}

test('turns the cache on in compile-cache beside the local state, when this user owns that directory', () => {
  const { d, enabled } = deps();
  assert.equal(cacheCompiledCode('/var/lib/loft/cache.db', d), '/var/lib/loft/compile-cache');
  assert.deepEqual(enabled, ['/var/lib/loft/compile-cache']);
});

test('leaves it off in a directory another user owns, or that does not exist yet', () => {
  for (const edits of [{ uid: 0 }, { ownerOf: () => undefined }]) {
    const { d, enabled } = deps(edits);
    assert.equal(cacheCompiledCode('/var/lib/loft/cache.db', d), undefined);
    assert.deepEqual(enabled, []);
  }
});

test('a Node without enableCompileCache, a platform without uids, or a cache Node could not open: off', () => {
  assert.equal(cacheCompiledCode('/var/lib/loft/cache.db', deps({ enable: undefined }).d), undefined);
  assert.equal(cacheCompiledCode('/var/lib/loft/cache.db', deps({ uid: undefined }).d), undefined);
  // 0: FAILED, 3: DISABLED (NODE_DISABLE_COMPILE_CACHE=1)
  for (const status of [0, 3])
    assert.equal(cacheCompiledCode('/var/lib/loft/cache.db', deps({}, status).d), undefined);
  const throwing = deps({
    enable: () => {
      throw new Error('EACCES');
    },
  });
  assert.equal(cacheCompiledCode('/var/lib/loft/cache.db', throwing.d), undefined);
});
