import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../src/errors.js';
import { ensureNixCacheInfo } from '../../../src/upload/cache-info.js';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';

const wanted = { storeDir: '/nix/store', priority: 30 };
const put = (s: MemoryObjectStore, text: string) =>
  s.putBytes('nix-cache-info', text, { contentType: 'text/x-nix-cache-info' });

test('written when missing, with the content type Nix uses', async () => {
  const store = new MemoryObjectStore();
  assert.equal(await ensureNixCacheInfo(store, wanted), 'written');
  const o = store.objects.get('nix-cache-info')!;
  assert.equal(o.contentType, 'text/x-nix-cache-info');
  assert.match(o.body.toString(), /^StoreDir: \/nix\/store\n/);
  assert.match(o.body.toString(), /WantMassQuery: 1\n/);
  assert.match(o.body.toString(), /Priority: 30\n/);
});

test('left alone when it already says the same, so runs do not rewrite it', async () => {
  const store = new MemoryObjectStore();
  await put(store, 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n');
  store.calls.length = 0;
  assert.equal(await ensureNixCacheInfo(store, wanted), 'unchanged');
  assert.ok(!store.calls.some((c) => c.op === 'putBytes'));
});

test('rewritten when the priority differs, keeping unknown keys', async () => {
  const store = new MemoryObjectStore();
  await put(store, 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\nX-Custom: kept\n');
  assert.equal(await ensureNixCacheInfo(store, wanted), 'written');
  const text = store.objects.get('nix-cache-info')!.body.toString();
  assert.match(text, /Priority: 30/);
  assert.match(text, /X-Custom: kept/);
});

test('a cache of another store directory is refused, not overwritten', async () => {
  const store = new MemoryObjectStore();
  await put(store, 'StoreDir: /gnu/store\nWantMassQuery: 1\n');
  await assert.rejects(ensureNixCacheInfo(store, wanted), ConfigError);
  assert.match(store.objects.get('nix-cache-info')!.body.toString(), /gnu/);
});
