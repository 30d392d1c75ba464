// The presence-cache commands: --clear-cache, --reset-initial-scan, --populate-cache.
import { hashPartOfNarinfoKey } from '../upload/nar-keys.js';
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
 */
export async function runPopulateCache(
  rt: Runtime,
  dryRun: boolean,
  say: (line: string) => void,
): Promise<void> {
  const inBucket: string[] = [];
  for await (const obj of rt.store.list('')) {
    const h = hashPartOfNarinfoKey(obj.key);
    if (h !== undefined) inBucket.push(h);
  }
  const before = rt.cache.count();
  if (!dryRun) {
    rt.cache.clear();
    rt.cache.addMany(inBucket.map((hashPart) => ({ hashPart })));
    rt.cache.setFlag('populated_from_bucket', true);
  }
  say(
    `${dryRun ? 'would populate' : 'populated'} the local cache from ${rt.store.description}: ` +
      `${inBucket.length} paths in the bucket (the cache had ${before})`,
  );
}
