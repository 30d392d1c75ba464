import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageError } from '../../../src/errors.js';
import { PresenceCache } from '../../../src/state/presence.js';
import { checkPresence, chooseStrategy } from '../../../src/upload/presence-check.js';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
const ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';
const hash = (i: number) =>
  i
    .toString(32)
    .padStart(32, '0')
    .replace(/[0-9a-v]/g, (c) => ALPHABET[parseInt(c, 32)]!);

test('HEADs for a handful of paths, a listing when that costs fewer requests', () => {
  assert.equal(chooseStrategy(5, 1_000_000), 'head');
  assert.equal(chooseStrategy(5, 0), 'head');
  assert.equal(chooseStrategy(5000, 0), 'list');
  // A bucket of a million paths takes ~2000 pages to list: 1500 HEADs are cheaper.
  assert.equal(chooseStrategy(1500, 1_000_000), 'head');
});

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
  assert.equal(chooseStrategy(all.length, cache.count()), 'list');
  const r = await checkPresence(all, cache, store);
  assert.deepEqual([...r.present].sort(), all.slice(0, 10).sort());
  assert.equal(r.requests, all.length);
  // Any other listing failure is the run's failure, as before.
  store.list = () => {
    throw new StorageError('refused', { code: 'E_STORAGE_AUTH' });
  };
  await assert.rejects(checkPresence(all.slice(10), cache, store), /refused/);
});
