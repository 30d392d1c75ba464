// Applying a prune plan to the bucket. Order matters for readers (Nix substituting at this moment):
//  1. the presence cache forgets the paths first: a row must never claim more than the bucket
//     holds, and a crash after this point only costs a re-check on the next upload;
//  2. every narinfo is deleted before any NAR, so no reader finds a narinfo whose NAR is gone
//     (Nix fetches the narinfo first and trusts it to name an existing NAR); the narinfos go
//     referrers first (the plan's order), so a delete cut short never strands a referrer;
//  3. then NARs, listings, logs and orphan NARs; then unfinished multipart uploads are aborted.
// Deletes go in DeleteObjects batches of up to 1000 keys (ObjectStore.deleteMany).
import type { PresenceCache } from '../state/presence.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../storage/object-store.js';
import { multipartUploadsOf } from '../storage/multipart-uploads.js';
import type { PendingUpload, PrunePlan } from './policy.js';
import type { PruneDb } from '../state/prune-db.js';

export interface PrunerDeps {
  store: ObjectStore;
  cache: PresenceCache;
  db: PruneDb;
  logger: Logger;
  signal?: AbortSignal;
}

export interface ApplyResult {
  deletedKeys: number;
  /** DeleteObjects requests sent (one per 1000 keys of each phase). */
  deleteRequests: number;
  abortedUploads: number;
}

export const DELETE_BATCH = 1000;

export async function applyPlan(plan: PrunePlan, deps: PrunerDeps): Promise<ApplyResult> {
  const hashParts = plan.paths.map((p) => p.hashPart);
  deps.cache.remove(hashParts);
  let deleteRequests = 0;
  if (plan.narinfoKeys.length > 0) {
    await deps.store.deleteMany(plan.narinfoKeys, deps.signal);
    deleteRequests += Math.ceil(plan.narinfoKeys.length / DELETE_BATCH);
  }
  deps.db.remove(hashParts);
  if (plan.dataKeys.length > 0) {
    await deps.store.deleteMany(plan.dataKeys, deps.signal);
    deleteRequests += Math.ceil(plan.dataKeys.length / DELETE_BATCH);
  }
  const abortedUploads = await abortUploads(plan.abortUploads, deps);
  return { deletedKeys: plan.narinfoKeys.length + plan.dataKeys.length, deleteRequests, abortedUploads };
}

export async function abortUploads(
  uploads: readonly PendingUpload[],
  deps: Pick<PrunerDeps, 'store' | 'logger' | 'signal'>,
): Promise<number> {
  const mp = multipartUploadsOf(deps.store);
  if (!mp) return 0;
  let aborted = 0;
  for (const u of uploads) {
    try {
      await mp.abortMultipartUpload(u.key, u.uploadId, deps.signal);
      aborted++;
    } catch (err) {
      // Not fatal: the parts are invisible to readers; the next prune tries again.
      deps.logger.warn({ key: u.key, err }, 'could not abort an unfinished multipart upload');
    }
  }
  return aborted;
}
