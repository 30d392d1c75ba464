// One host's state over an in-memory bucket, for unit tests of the prune and daemon code: the
// MemoryObjectStore, and the presence cache and prune tables in a real SQLite file in a temporary
// directory, which is removed after the test file's tests.
import { after } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PresenceCache } from '../../src/state/presence.js';
import { PruneDb } from '../../src/state/prune-db.js';
import { MemoryObjectStore } from './memory-object-store.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

export async function memoryBucket(
  name: string,
): Promise<{ store: MemoryObjectStore; cache: PresenceCache; db: PruneDb }> {
  const dir = await mkdtemp(join(tmpdir(), `loft-${name}-`));
  dirs.push(dir);
  const store = new MemoryObjectStore();
  const cache = PresenceCache.open(join(dir, 'c.db'), { target: 'memory://t' });
  const db = PruneDb.open(cache.path, cache.target);
  return { store, cache, db };
}
