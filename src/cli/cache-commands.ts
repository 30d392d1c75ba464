// The presence-cache commands: --clear-cache, --reset-initial-scan, --populate-cache.
import { populateCache, type PopulateCacheDeps } from '../daemon/populate-cache.js';
import type { CacheMaintenance } from './action.js';
import type { Runtime } from './runtime.js';

export function runCacheMaintenance(rt: Runtime, cli: CacheMaintenance, say: (line: string) => void): void {
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

/** `--populate-cache`: the local cache made to match the bucket (daemon/populate-cache.ts). */
export async function runPopulateCache(
  rt: Runtime,
  dryRun: boolean,
  say: (line: string) => void,
): Promise<void> {
  say(await populateCache(populateDeps(rt), dryRun));
}

export function populateDeps(rt: Runtime): PopulateCacheDeps {
  return {
    store: rt.store,
    cache: rt.cache,
    db: rt.pruneDb(),
    storeDir: rt.config.storeDir,
    logger: rt.logger.child({ component: 'populate-cache' }),
  };
}
