// The one opener of loft's local database, on real SQLite files: every table module sees the same
// migrated file, and a switch of target drops exactly the rows tied to the old target.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { bindTarget, openStateDb, shrinkStateDbMemory } from '../../../src/state/database.js';
import { PresenceCache } from '../../../src/state/presence.js';
import { PruneDb } from '../../../src/state/prune-db.js';
import { UploadQueue } from '../../../src/state/queue.js';

const dir = mkdtempSync(join(tmpdir(), 'loft-state-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const H = 'b6gvzjyb2pg0kjfwrjmg1vfhh54ad73z';
const P = `/nix/store/${H}-p`;

test('a switch of target drops presence, its flags and narinfo_meta, and keeps the queue', () => {
  const path = join(dir, 'nested', 'state.db');
  const cache = PresenceCache.open(path, { target: 'file:///a' });
  cache.add(H);
  cache.setFlag('populated_from_bucket', true);
  cache.setFlag('initial_scan_complete', true);
  const prune = PruneDb.open(path, 'file:///a');
  prune.putMany([{ hashPart: H, narinfoSize: 10, lastModified: 1, references: [], malformed: false }]);
  const queue = UploadQueue.open(path);
  queue.enqueue([P]);

  const db = openStateDb(path);
  assert.equal(bindTarget(db, 'file:///a'), undefined, 'same target: nothing dropped');
  assert.equal(bindTarget(db, 'file:///b'), 'file:///a');
  db.close();

  assert.equal(cache.count(), 0);
  assert.equal(cache.getFlag('populated_from_bucket'), false);
  assert.equal(cache.getFlag('initial_scan_complete'), false);
  assert.equal(prune.all().size, 0);
  assert.deepEqual(queue.counts(), { pending: 1, parked: 0 });
  for (const c of [cache, prune, queue]) c.close();
});

test('a fresh file gets its target without dropping anything', () => {
  const db = openStateDb(join(dir, 'fresh.db'));
  assert.equal(bindTarget(db, 's3://bucket@endpoint'), undefined);
  assert.equal(
    db.prepare("SELECT value FROM meta WHERE key = 'target'").pluck().get(),
    's3://bucket@endpoint',
  );
  db.close();
});

test('the idle release shrinks every open connection of the file, and forgets closed ones', () => {
  const path = join(dir, 'shrink.db');
  const before = shrinkStateDbMemory();
  const queue = UploadQueue.open(path);
  const cache = PresenceCache.open(path, { target: 'file:///a' });
  const db = openStateDb(path);
  // Fill a page cache: the rows are read back, so their pages were in it.
  queue.enqueue(
    Array.from({ length: 2000 }, (_, i) => `/nix/store/${H.slice(0, 28)}${String(i).padStart(4, '0')}-p`),
  );
  assert.equal(shrinkStateDbMemory(), before + 3);
  db.close();
  assert.equal(shrinkStateDbMemory(), before + 2, 'a closed connection is skipped');
  assert.equal(queue.counts().pending, 2000, 'the connections work on after the shrink');
  cache.close();
  queue.close();
  assert.equal(shrinkStateDbMemory(), before);
});
