// Applying a repair plan: nix-cache-info first (Nix reads it before anything), then one upload run
// for everything the local store can mend (so references still go before referrers and each
// narinfo is written last), then the deletions, referrers first. Rows of the presence cache for
// every path touched are dropped beforehand: they said "present" (and maybe "signed by us") about
// narinfos that verify just found broken, and the uploader trusts them.
import type { PresenceCache } from '../state/presence.js';
import { oneLine } from '../errors.js';
import { narinfoKey } from '../format/bucket-layout.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../storage/object-store.js';
import { ensureNixCacheInfo } from '../upload/cache-info.js';
import type { FailedPath, UploadReport } from '../upload/upload-closure.js';
import type { RepairPlan } from './repair-plan.js';

export interface RepairDeps {
  store: ObjectStore;
  cache: PresenceCache;
  storeDir: string;
  priority: number;
  /** Uploads the closures of `paths`; `force` (hash parts) are uploaded even when present. */
  upload: (paths: string[], force: ReadonlySet<string>) => Promise<UploadReport>;
  logger: Logger;
  signal?: AbortSignal;
}

export interface RepairOutcome {
  /** Narinfo keys (and nix-cache-info) mended. */
  mended: string[];
  deleted: string[];
  /** What was tried and failed, one line each. */
  failed: string[];
}

export async function applyRepair(plan: RepairPlan, deps: RepairDeps): Promise<RepairOutcome> {
  const out: RepairOutcome = { mended: [], deleted: [], failed: [] };
  if (plan.fixCacheInfo) {
    try {
      await ensureNixCacheInfo(deps.store, { storeDir: deps.storeDir, priority: deps.priority });
      out.mended.push('nix-cache-info');
    } catch (err) {
      out.failed.push(`nix-cache-info: not written: ${oneLine(err)}`);
    }
  }
  const actions = [...plan.reupload, ...plan.resign, ...plan.uploadMissing];
  const touched = [...actions.map((a) => a.info.hashPart), ...plan.deletions.map((d) => d.hashPart)];
  deps.cache.remove(touched);
  if (actions.length > 0) {
    const force = new Set(plan.reupload.map((a) => a.info.hashPart));
    const report = await deps.upload([...new Set(actions.map((a) => a.info.path))], force);
    const failed = new Map<string, FailedPath>(report.failed.map((f) => [f.path, f]));
    for (const a of actions) {
      const f = failed.get(a.info.path);
      if (f) out.failed.push(`${a.key}: not mended: ${f.message}`);
      else out.mended.push(a.key);
    }
  }
  if (plan.deletions.length > 0) {
    // In one call, in the plan's order (referrers first), as the pruner deletes: a delete cut short
    // leaves no narinfo whose reference is gone. The NARs stay until a prune finds them orphaned.
    const keys = plan.deletions.map((d) => narinfoKey(d.hashPart));
    await deps.store.deleteMany(keys, deps.signal);
    out.deleted.push(...keys);
    deps.logger.info({ narinfos: keys.length }, 'unrepairable narinfos deleted, referrers first');
  }
  return out;
}
