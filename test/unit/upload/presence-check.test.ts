import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageError } from '../../../src/errors.js';
import { PresenceCache } from '../../../src/state/presence.js';
import type { ObjectInfo } from '../../../src/storage/object-store.js';
import { checkPresence, chooseStrategy, HEAD_CONCURRENCY } from '../../../src/upload/presence-check.js';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
const ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';
const hash = (i: number) =>
  i
    .toString(32)
    .padStart(32, '0')
    .replace(/[0-9a-v]/g, (c) => ALPHABET[parseInt(c, 32)]!);

test('HEADs for one wave of paths, else a listing with a budget of as many pages as HEAD waves', () => {
  assert.deepEqual(chooseStrategy(5, 1_000_000), { kind: 'head' });
  assert.deepEqual(chooseStrategy(HEAD_CONCURRENCY, 0), { kind: 'head' });
  // 401 paths are 9 waves of HEADs: the listing may read 9 pages.
  assert.deepEqual(chooseStrategy(401, 0), { kind: 'list', maxKeys: 9000 });
  assert.deepEqual(chooseStrategy(5000, 0), { kind: 'list', maxKeys: 105_000 });
  // A bucket of a million paths takes 1000 pages to list: 1500 HEADs (32 waves) are cheaper.
  assert.deepEqual(chooseStrategy(1500, 1_000_000), { kind: 'head' });
});

/** A store whose top-level listing comes in pages of 1000, as S3's does, counting the pages read. */
class PagedStore extends MemoryObjectStore {
  pages = 0;
  async *listTopLevel(): AsyncIterable<ObjectInfo> {
    const keys = [...this.objects.keys()].filter((k) => !k.includes('/')).sort();
    for (let i = 0; i < keys.length; i += 1000) {
      this.pages++;
      await Promise.resolve();
      for (const key of keys.slice(i, i + 1000)) {
        const o = this.objects.get(key)!;
        yield { key, size: o.body.length, lastModified: o.lastModified };
      }
    }
  }
}

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'loft-presence-'));
  dirs.push(dir);
  return {
    cache: PresenceCache.open(join(dir, 'c.db'), { target: 'memory://t' }),
    store: new MemoryObjectStore(),
  };
}

test('asks the bucket only about what the local cache does not know, and remembers the answer', async () => {
  const { cache, store } = await setup();
  const all = [0, 1, 2, 3].map(hash);
  cache.add(all[0]!);
  await store.putBytes(`${all[1]}.narinfo`, 'x', { contentType: 't' });
  store.calls.length = 0;
  const r = await checkPresence(all, cache, store);
  assert.deepEqual([...r.present].sort(), [all[0], all[1]].sort());
  assert.deepEqual(
    store.calls.map((c) => c.key).sort(),
    [all[1], all[2], all[3]].map((h) => `${h}.narinfo`).sort(),
  );
  assert.equal(r.learnedFromBucket, 1);
  assert.ok(cache.has(all[1]!));
});

test('many unknown paths are learned from one listing, not one HEAD each', async () => {
  const { cache, store } = await setup();
  const all = Array.from({ length: 3000 }, (_, i) => hash(i));
  for (const h of all.slice(0, 100)) await store.putBytes(`${h}.narinfo`, 'x', { contentType: 't' });
  store.calls.length = 0;
  const r = await checkPresence(all, cache, store);
  assert.equal(r.present.size, 100);
  assert.deepEqual(
    store.calls.map((c) => c.op),
    ['list'],
  );
});

test('--force-scan ignores what the local cache says', async () => {
  const { cache, store } = await setup();
  cache.add(hash(7));
  const r = await checkPresence([hash(7)], cache, store, { ignoreLocal: true });
  assert.equal(r.present.size, 0);
});

test('a store that cannot list (an HTTP cache without WebDAV) is asked with HEADs instead', async () => {
  const { cache, store } = await setup();
  const all = Array.from({ length: 600 }, (_, i) => hash(i));
  for (const h of all.slice(0, 10)) await store.putBytes(`${h}.narinfo`, 'x', { contentType: 't' });
  store.list = () => {
    throw new StorageError('cannot list its files', { code: 'E_STORAGE_NO_LISTING' });
  };
  assert.equal(chooseStrategy(all.length, cache.count()).kind, 'list');
  const r = await checkPresence(all, cache, store);
  assert.deepEqual([...r.present].sort(), all.slice(0, 10).sort());
  assert.equal(r.requests, all.length);
  // Any other listing failure is the run's failure, as before.
  store.list = () => {
    throw new StorageError('refused', { code: 'E_STORAGE_AUTH' });
  };
  await assert.rejects(checkPresence(all.slice(10), cache, store), /refused/);
});

test('a listing that answers everything leaves nothing to HEAD, and learns the narinfos it read', async () => {
  const { cache } = await setup();
  const store = new PagedStore();
  const all = Array.from({ length: 400 }, (_, i) => hash(i));
  for (const h of all) {
    await store.putBytes(`${h}.narinfo`, 'x', { contentType: 't' });
    await store.putBytes(`nar/${h}.nar.zst`, 'x', { contentType: 't' });
    await store.putBytes(`log/${h}-x.drv`, 'x', { contentType: 't' });
  }
  store.calls.length = 0;
  const r = await checkPresence([...all, hash(9999)], cache, store);
  assert.equal(r.present.size, 400);
  assert.ok(!r.present.has(hash(9999)));
  // One page of narinfos: NARs and logs are not listed, nothing is HEADed.
  assert.equal(store.pages, 1);
  assert.deepEqual(store.calls, []);
  assert.equal(r.requests, 1);
  assert.equal(cache.count(), 400);
});

test('a listing that runs out of budget decides what it read and HEADs only the paths past it', async () => {
  const { cache } = await setup();
  const store = new PagedStore();
  // 5000 narinfos in the bucket; 100 unknown paths spread over them, 20 of them absent.
  for (let i = 0; i < 5000; i++) await store.putBytes(`${hash(i)}.narinfo`, 'x', { contentType: 't' });
  const asked = Array.from({ length: 100 }, (_, i) => hash(i * 50 + (i % 5 === 0 ? 20_000 : 0)));
  const expected = asked.filter((_, i) => i % 5 !== 0);
  store.calls.length = 0;
  const r = await checkPresence(asked, cache, store);
  const headed = store.calls.filter((c) => c.op === 'head').map((c) => c.key);
  assert.deepEqual([...r.present].sort(), expected.sort());
  // 100 paths are 3 waves of HEADs: 3 pages (3000 keys) read, not 5.
  assert.equal(store.pages, 3);
  const lastListed = `${hash(2999)}.narinfo`;
  assert.ok(headed.length > 0 && headed.every((k) => k > lastListed));
  assert.deepEqual(
    headed.sort(),
    asked
      .map((h) => `${h}.narinfo`)
      .filter((k) => k > lastListed)
      .sort(),
  );
  assert.equal(r.requests, 3 + headed.length);
});

test('a listing that read the whole top level names its folders; a truncated one names none', async () => {
  const { cache, store } = await setup();
  const unknown = Array.from({ length: HEAD_CONCURRENCY + 1 }, (_, i) => hash(i));
  for (const key of ['nar/x.nar.zst', 'log/y.drv', `${hash(1)}.narinfo`])
    await store.putBytes(key, 'x', { contentType: 't' });
  const all = await checkPresence(unknown, cache, store);
  assert.equal(all.listedAll, true);
  assert.deepEqual([...(all.folders ?? [])].sort(), ['log/', 'nar/']);
  // 1,001 unknown paths against a bucket of 250,000 known: HEADs, no listing, no folders.
  const { cache: big, store: other } = await setup();
  big.learn(Array.from({ length: 250_000 }, (_, i) => hash(100_000 + i)));
  const headed = await checkPresence(
    Array.from({ length: 1001 }, (_, i) => hash(i)),
    big,
    other,
  );
  assert.equal(headed.folders, undefined);
});
