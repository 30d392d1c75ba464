// Presence from a listing of the bucket's top level against a real S3 server (s3rver in-process):
// the delimiter folds nar/ and log/ away, pages come in key order, and a listing that answers every
// path leaves nothing to HEAD.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PresenceCache } from '../../src/state/presence.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { checkPresence } from '../../src/upload/presence-check.js';
import { startS3Server, storeOptionsFor, type TestS3 } from '../helpers/s3-server.js';

const ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';
const hash = (i: number) =>
  (i + 1000)
    .toString(32)
    .padStart(32, '0')
    .replace(/[0-9a-v]/g, (c) => ALPHABET[parseInt(c, 32)]!);

let s3: TestS3;
let dir: string;
const stored = Array.from({ length: 60 }, (_, i) => hash(i * 2));

before(async () => {
  s3 = await startS3Server();
  dir = await mkdtemp(join(tmpdir(), 'loft-presence-listing-'));
  const store = new S3ObjectStore(storeOptionsFor(s3));
  const put = (key: string) => store.putBytes(key, 'x', { contentType: 'text/plain' });
  await put('nix-cache-info');
  await Promise.all(
    stored.flatMap((h) => [put(`${h}.narinfo`), put(`nar/${h}-x.nar.zst`), put(`log/${h}-x.drv`)]),
  );
  await store.close();
});
after(async () => {
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

test('the top-level listing holds the narinfos and nix-cache-info only, in key order, across pages', async () => {
  const store = new S3ObjectStore({ ...storeOptionsFor(s3), listPageSize: 7 });
  try {
    const mark = s3.requests.length;
    const keys: string[] = [];
    const folders = new Set<string>();
    for await (const o of store.listTopLevel(undefined, folders)) keys.push(o.key);
    const expected = [...stored.map((h) => `${h}.narinfo`), 'nix-cache-info'].sort();
    assert.deepEqual(keys, expected);
    // The folded folders are named once each, from S3's CommonPrefixes.
    assert.deepEqual([...folders].sort(), ['log/', 'nar/']);
    if (!s3.external) {
      const lists = s3.requests.slice(mark).filter((r) => r.method === 'GET' && r.key === '');
      assert.equal(lists.length, Math.ceil(expected.length / 7));
      assert.ok(lists.every((r) => r.query.get('delimiter') === '/'));
    }
  } finally {
    await store.close();
  }
});

test('120 paths with empty local state: one listing request answers all, present paths are found', async (t) => {
  if (s3.external) return t.skip('needs the recording proxy of the in-process s3rver');
  const store = new S3ObjectStore(storeOptionsFor(s3));
  const cache = PresenceCache.open(join(dir, 'presence.db'), { target: 'memory://t' });
  try {
    const asked = Array.from({ length: 120 }, (_, i) => hash(i));
    const mark = s3.requests.length;
    const r = await checkPresence(asked, cache, store);
    assert.deepEqual([...r.present].sort(), stored.filter((h) => asked.includes(h)).sort());
    const requests = s3.requests.slice(mark);
    assert.deepEqual(
      requests.map((q) => q.method),
      ['GET'],
      'one ListObjectsV2, no HEAD per path',
    );
    assert.equal(r.requests, 1);
  } finally {
    cache.close();
    await store.close();
  }
});
