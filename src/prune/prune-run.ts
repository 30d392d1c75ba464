// One prune, start to end: take the lock, read the bucket, plan, read the bucket again just before
// deleting (cheap: one listing, and only narinfos written meanwhile are fetched) and plan on that
// fresh view, then apply. The second look matters because reading thousands of narinfos takes a
// while: a narinfo committed by an upload meanwhile may reference a path the first plan deleted.
// The daemon passes the hash parts its in-flight uploads rely on (`protectedHashParts`), read right
// before each plan, so a prune never deletes what its own uploads are about to reference.
import { hostname } from 'node:os';
import type { PresenceCache } from '../state/presence.js';
import { PruneBusyError } from '../errors.js';
import { takeInventory, type Inventory, type InventoryDeps } from './inventory.js';
import { planPrune, type PrunePlan, type PruneSettingsInput } from './policy.js';
import { applyPlan, type ApplyResult } from './pruner.js';

export interface PruneRunDeps extends InventoryDeps {
  cache: PresenceCache;
}

export interface PruneRunOptions {
  settings: PruneSettingsInput;
  /** The clock the policy sees (ages are measured against it). */
  now: Date;
  dryRun: boolean;
  protectedHashParts?: () => ReadonlySet<string>;
}

export interface PruneResult {
  plan: PrunePlan;
  inventory: Inventory;
  /** Narinfos fetched over both looks at the bucket. */
  narinfosRead: number;
  /** ListObjectsV2 pages read (estimated from the object count; 1000 keys a page). */
  listPages: number;
  applied?: ApplyResult;
}

export async function runPruneOnce(deps: PruneRunDeps, opts: PruneRunOptions): Promise<PruneResult> {
  if (opts.dryRun) {
    const inventory = await takeInventory(deps);
    const plan = planFrom(inventory, opts);
    return { plan, inventory, narinfosRead: inventory.narinfosRead, listPages: pages(inventory) };
  }
  const holder = deps.db.tryLock({ pid: process.pid, host: hostname() });
  if (holder) {
    throw new PruneBusyError(
      `another prune is running (pid ${holder.pid} on ${holder.host}); try again when it has finished`,
    );
  }
  try {
    const first = await takeInventory(deps);
    let inventory = first;
    let plan = planFrom(first, opts);
    let listPages = pages(first);
    let narinfosRead = first.narinfosRead;
    if (plan.narinfoKeys.length > 0 || plan.dataKeys.length > 0) {
      inventory = await takeInventory(deps);
      plan = planFrom(inventory, opts);
      listPages += pages(inventory);
      narinfosRead += inventory.narinfosRead;
    }
    const applied = await applyPlan(plan, deps);
    deps.logger.info(
      { paths: plan.paths.length, bytes: plan.pathBytes + plan.orphanBytes, orphans: plan.orphans.length },
      'prune finished',
    );
    return { plan, inventory, narinfosRead, listPages, applied };
  } finally {
    deps.db.unlock();
  }
}

function planFrom(inventory: Inventory, opts: PruneRunOptions): PrunePlan {
  return planPrune({
    paths: inventory.paths,
    orphanCandidates: inventory.orphanCandidates,
    pendingUploads: inventory.pendingUploads,
    bucketBytes: inventory.bucketBytes,
    now: opts.now.getTime(),
    settings: opts.settings,
    ...(opts.protectedHashParts ? { protectedHashParts: opts.protectedHashParts() } : {}),
  });
}

function pages(inventory: Inventory): number {
  return Math.max(1, Math.ceil(inventory.objects / 1000));
}
