import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storePathsByHashPart } from '../../../src/store/paths-by-hash.js';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

test('names in the store directory with a wanted hash part; locks, other hashes and odd names left out', async () => {
  const store = await mkdtemp(join(tmpdir(), 'loft-paths-by-hash-'));
  try {
    for (const n of [
      `${A}-hello`,
      `${A}-hello.drv`,
      `${A}-hello.lock`,
      `${B}-other`,
      '.links',
      `${A}x-bad`,
    ]) {
      await (n === '.links' ? mkdir(join(store, n)) : writeFile(join(store, n), ''));
    }
    const found = await storePathsByHashPart(store, new Set([A]));
    assert.deepEqual(found.sort(), [`${store}/${A}-hello`, `${store}/${A}-hello.drv`]);
    assert.deepEqual(await storePathsByHashPart(store, new Set()), []);
    assert.deepEqual(await storePathsByHashPart(join(store, 'absent'), new Set([A])), []);
  } finally {
    await rm(store, { recursive: true, force: true });
  }
});
