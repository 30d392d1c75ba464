// The presence-cache commands: --clear-cache, --reset-initial-scan, --populate-cache.
import { listBucket, readNarinfoMetas } from '../prune/inventory.js';
import { PruneDb } from '../state/prune-db.js';
import type { CliOptions } from './program.js';
import type { Runtime } from './runtime.js';

export function runCacheMaintenance(
  rt: Runtime,
  cli: Pick<CliOptions, 'clearCache' | 'resetInitialScan' | 'dryRun'>,
  say: (line: string) => void,
): void {
  if (cli.clearCache) {
    const n = rt.cache.count();
    if (!cli.dryRun) rt.cache.clear();
    say(
      `${cli.dryRun ? 'would clear' : 'cleared'} ${n} entries from the local cache ${rt.config.localCachePath}`,
    );
  }
  if (cli.resetInitialScan) {
    if (!cli.dryRun) rt.cache.setFlag('initial_scan_complete', false);
    say(
      `${cli.dryRun ? 'would reset' : 'reset'} the initial scan flag: the next daemon start scans the store`,
    );
  }
}

/**
 * Makes the local cache say exactly what the bucket's narinfos say: adds what it lacks and drops
 * entries whose narinfo is gone (pruned, or deleted by hand), which would otherwise be skipped forever.
 * Each narinfo is read (once: pruning's narinfo_meta table remembers what it says until the object
 * changes), and one that is malformed is left out with a warning naming its key: Nix could not
 * substitute that path, so the cache must not claim it.
 */
export async function runPopulateCache(
  rt: Runtime,
  dryRun: boolean,
  say: (line: string) => void,
): Promise<void> {
  const db = PruneDb.open(rt.cache.path, rt.cache.target);
  let inBucket: string[];
  let malformed: number;
  try {
    const { objects } = await listBucket(rt.store);
    const deps = {
      store: rt.store,
      db,
      storeDir: rt.config.storeDir,
      logger: rt.logger.child({ component: 'populate-cache' }),
    };
    const { metas } = await readNarinfoMetas(objects, deps, 'left out of the local cache');
    inBucket = metas.filter((m) => !m.malformed).map((m) => m.hashPart);
    malformed = metas.length - inBucket.length;
  } finally {
    db.close();
  }
  const before = rt.cache.count();
  if (!dryRun) {
    rt.cache.clear();
    rt.cache.addMany(inBucket.map((hashPart) => ({ hashPart })));
    rt.cache.setFlag('populated_from_bucket', true);
  }
  say(
    `${dryRun ? 'would populate' : 'populated'} the local cache from ${rt.store.description}: ` +
      `${inBucket.length} paths in the bucket (the cache had ${before})` +
      (malformed > 0 ? `; ${malformed} malformed narinfos left out (see the log)` : ''),
  );
}
