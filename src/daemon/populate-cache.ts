// populate_cache_on_startup and `loft --populate-cache`: makes the local presence cache say exactly
// what the bucket's narinfos say. It adds what the cache lacks and drops entries whose narinfo is
// gone (pruned, or deleted by hand), which would otherwise be skipped forever. Each narinfo is read
// once: prune's narinfo_meta table remembers what it says until the object changes. One that is
// malformed is left out with a warning naming its key: Nix could not substitute that path, so the
// cache must not claim it. It lives here, above prune/, because it reads the bucket the way
// pruning does; the CLI command and the daemon's start both call it.
import type { Logger } from '../log.js';
import { listBucket, readNarinfoMetas } from '../prune/inventory.js';
import type { PresenceCache } from '../state/presence.js';
import type { PruneDb } from '../state/prune-db.js';
import type { ObjectStore } from '../storage/object-store.js';

export interface PopulateCacheDeps {
  store: ObjectStore;
  cache: PresenceCache;
  /** Pruning's record of what each narinfo says, so a narinfo seen before is not read again. */
  db: PruneDb;
  storeDir: string;
  logger: Logger;
}

/** Returns the one line that says what was done (or, with dryRun, what would be). */
export async function populateCache(deps: PopulateCacheDeps, dryRun: boolean): Promise<string> {
  const { cache, store } = deps;
  const { objects } = await listBucket(store);
  const readDeps = { store, db: deps.db, storeDir: deps.storeDir, logger: deps.logger };
  const { metas } = await readNarinfoMetas(objects, readDeps, 'left out of the local cache');
  const inBucket = metas.filter((m) => !m.malformed).map((m) => m.hashPart);
  const malformed = metas.length - inBucket.length;
  const before = cache.count();
  if (!dryRun) {
    cache.clear();
    cache.addMany(inBucket.map((hashPart) => ({ hashPart })));
    cache.setFlag('populated_from_bucket', true);
  }
  return (
    `${dryRun ? 'would populate' : 'populated'} the local cache from ${store.description}: ` +
    `${inBucket.length} paths in the bucket (the cache had ${before})` +
    (malformed > 0 ? `; ${malformed} malformed narinfos left out (see the log)` : '')
  );
}
