// populate_cache_on_startup and --populate-cache over the in-memory object store and a real SQLite
// file: afterwards the presence cache holds exactly the bucket's well-formed narinfos.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/log.js';
import { populateCache } from '../../../src/daemon/populate-cache.js';
import { memoryBucket } from '../../helpers/memory-bucket.js';
import { h, narinfoText } from '../prune/policy-fixtures.js';

async function setup() {
  const { store, cache, db } = await memoryBucket('populate');
  for (const id of [1, 2]) await store.putBytes(`${h(id)}.narinfo`, narinfoText(id), { contentType: 'x' });
  await store.putBytes(`${h(3)}.narinfo`, 'StorePath: nonsense\n', { contentType: 'x' });
  cache.add(h(9)); // gone from the bucket (pruned elsewhere)
  return { store, cache, deps: { store, cache, db, storeDir: '/nix/store', logger: silentLogger() } };
}

test('the cache ends up with the bucket: missing rows added, stale and malformed ones left out', async () => {
  const { cache, deps } = await setup();
  const line = await populateCache(deps, false);
  assert.deepEqual(
    [1, 2, 3, 9].map((id) => cache.has(h(id))),
    [true, true, false, false],
  );
  assert.equal(cache.getFlag('populated_from_bucket'), true);
  assert.equal(
    line,
    'populated the local cache from memory://test: 2 paths in the bucket (the cache had 1); ' +
      '1 malformed narinfos left out (see the log)',
  );
  cache.close();
});

test('a dry run says what it would do and changes nothing', async () => {
  const { cache, deps } = await setup();
  const line = await populateCache(deps, true);
  assert.match(line, /^would populate the local cache from memory:\/\/test: 2 paths in the bucket/);
  assert.deepEqual([cache.has(h(1)), cache.has(h(9))], [false, true]);
  assert.equal(cache.getFlag('populated_from_bucket'), false);
  cache.close();
});
