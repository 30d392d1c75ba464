// Opening what a command works with, from a loaded Config: the object store and the presence
// cache, and on first use what several of its parts share (the prune database, what every upload
// batch shares). Each piece is released in `close`, whatever happened.
import { MultipartState } from '../state/multipart-state.js';
import { PresenceCache } from '../state/presence.js';
import { PruneDb } from '../state/prune-db.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { storageTarget } from '../config/storage-target.js';
import { openObjectStore } from '../storage/open-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { NarMemory } from '../chunk-pool.js';
import type { MemoryBudget } from '../memory-budget.js';
import type { ComputePool } from '../upload/compute-pool.js';
import type { NarWorkers } from '../upload/nar-workers.js';
import type { PruneGuard } from '../upload/prune-guard.js';
import type { SignedLedger } from '../upload/signed-ledger.js';
import type { NixCacheInfo } from '../format/nix-cache-info.js';
import { releaseAll, type Release } from '../release-list.js';

/**
 * What one runtime's uploads share, however many times their deps are built (the daemon and
 * --watch-exec build them once per batch): the compute pool and the NAR memory, so memory stays
 * bounded and reused across batches; the prune guard, so the state objects it has read are not fetched again for every
 * batch; and the nix-cache-info write. Made at the first upload by cli/upload-deps.ts.
 */
export interface RuntimeUploads {
  /** `memory_budget`: the compute pool, the NAR memory and S3 bodies take their bytes from it. */
  memoryBudget: MemoryBudget;
  computePool: ComputePool;
  /** Worker threads for whole middle-sized NARs, started on first use, ended when idle. */
  narWorkers: NarWorkers;
  /** The NAR reader's memory, lent to the compressor and given back by it (src/chunk-pool.ts). */
  narMemory: NarMemory;
  pruneGuard: PruneGuard;
  /** The bucket's records of narinfos signed by our key; absent when nothing is signed. */
  signedLedger?: SignedLedger;
  /** The read of nix-cache-info (what to write, if anything), once started and not failed. */
  cacheInfoCheck?: Promise<NixCacheInfo | undefined>;
  /** The write of nix-cache-info, once it has started and not failed. */
  cacheInfo?: Promise<void>;
  /** Derivations whose build log is in the bucket: each log is written once per runtime. */
  logsDone: Set<string>;
}

export interface Runtime {
  config: Config;
  logger: Logger;
  store: ObjectStore;
  cache: PresenceCache;
  /** Set at the first upload (cli/upload-deps.ts); absent in a runtime that uploads nothing. */
  uploads?: RuntimeUploads;
  /** Pruning's tables of the same database file, opened on first use and closed with the runtime. */
  pruneDb(): PruneDb;
  /** S3 only: unfinished multipart uploads, so a killed run's large NAR is resumed. */
  multipart?: MultipartState;
  close(): Promise<void>;
}

export async function openRuntime(config: Config, logger: Logger): Promise<Runtime> {
  const store = openObjectStore(config.storage, logger.child({ component: 'storage' }));
  const releases: Release[] = [() => store.close()];
  try {
    const cache = PresenceCache.open(config.localCachePath, {
      target: storageTarget(config.storage),
      logger: logger.child({ component: 'presence-cache' }),
    });
    releases.push(() => cache.close());
    let pruneDb: PruneDb | undefined;
    const multipart =
      config.storage.kind === 's3'
        ? MultipartState.open(config.localCachePath, { target: storageTarget(config.storage) })
        : undefined;
    if (multipart) releases.push(() => multipart.close());
    return {
      config,
      logger,
      store,
      cache,
      pruneDb: () => {
        if (pruneDb) return pruneDb;
        const db = PruneDb.open(cache.path, cache.target);
        releases.push(() => {
          db.close();
          pruneDb = undefined;
        });
        return (pruneDb = db);
      },
      ...(multipart ? { multipart } : {}),
      close: () => releaseAll(releases),
    };
  } catch (err) {
    await releaseAll(releases);
    throw err;
  }
}
