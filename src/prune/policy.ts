// What a prune deletes: a PURE function from a snapshot of the bucket (paths, their references and
// upload times, NAR objects no narinfo names, unfinished multipart uploads) plus `now` and the
// settings, to a plan. No I/O, no clock: the caller passes `now`.
//
// The unit is a store path: its narinfo, the NAR its URL names, and the listing/log objects the
// inventory attached to it. Rules, in order:
//  1. young(p)  = p's narinfo was written less than `orphanGraceHours` ago (or in the future).
//     pinned(p) = young, malformed (its contents are unknown), or protected by the caller (an
//     upload of this host relies on it). A pinned path is never deleted.
//  2. broken(p) = p is not pinned and the NAR its URL names is absent from the bucket (Nix cannot
//     substitute it), or p references a broken path (transitively, through referrers).
//  3. expired(p) = p's narinfo is older than `retentionDays`.
//  4. roots = pinned paths and paths that are neither expired nor broken; kept = everything
//     reachable from a root through References; deleted = all - kept. So no path that stays ever
//     references a deleted one. An expired path that is kept is "kept because referenced".
//  5. Size cap (only with maxSizeGb): when the bucket (every object, foreign ones included) would
//     still exceed maxSizeGb GiB, the roots of the kept graph (kept paths no kept path references)
//     that are not pinned are evicted oldest first; evicting a root also deletes each path whose
//     last remaining referrer was deleted (reference counts, so a shared dependency stays while
//     any referrer stays). It stops as soon as the bucket is at or below targetPercentage % of the
//     cap. Paths in a reference cycle (impossible in Nix) are never evicted.
//  6. Orphans: objects under `nar/` that no narinfo names, and unfinished multipart uploads, are
//     deleted only once older than `orphanGraceHours` (another host's upload may be in flight).
//  7. A NAR named by several narinfos (`nix copy` names NARs by their FileHash, so equal contents
//     share one) is deleted only with its last owner. Objects loft does not know are never touched.
// The plan lists every narinfo key before any data key: the pruner deletes narinfos first, so a
// reader never sees a narinfo whose NAR is gone.
import { PathGraph } from './path-graph.js';

export interface PruneObject {
  key: string;
  size: number;
}

export interface PrunePath {
  hashPart: string;
  narinfoKey: string;
  narinfoSize: number;
  /** The key the narinfo's URL names; undefined when a malformed narinfo names none. */
  narKey?: string;
  /** Size of that NAR object in the bucket; undefined when the object is absent. */
  narObjectSize?: number;
  /** Listing (`<hash>.ls`) and build log objects owned by this path alone. */
  extraObjects: PruneObject[];
  /** Hash parts of the References, without the path itself. */
  references: string[];
  /** When the narinfo was written (its LastModified), in ms since the epoch. */
  uploadedAt: number;
  /** The narinfo could not be parsed: kept, and what it may name is kept too. */
  malformed: boolean;
}

export interface OrphanCandidate extends PruneObject {
  lastModified: number;
}

export interface PendingUpload {
  key: string;
  uploadId: string;
  initiated: number;
}

export interface PruneSettingsInput {
  retentionDays: number;
  maxSizeGb?: number;
  targetPercentage: number;
  orphanGraceHours: number;
}

export interface PruneInput {
  paths: readonly PrunePath[];
  orphanCandidates: readonly OrphanCandidate[];
  pendingUploads: readonly PendingUpload[];
  /** Sum of the sizes of every object listed, loft's and foreign ones. */
  bucketBytes: number;
  now: number;
  settings: PruneSettingsInput;
  protectedHashParts?: ReadonlySet<string>;
}

export type DeleteReason = 'expired' | 'broken' | 'size';

export interface PlannedPath {
  hashPart: string;
  reason: DeleteReason;
  uploadedAt: number;
  /** Bytes this deletion frees (a shared NAR counts with its last owner). */
  bytes: number;
  /** For reason 'size': the root whose eviction took this path along. */
  evictedWith?: string;
}

export interface PrunePlan {
  paths: PlannedPath[];
  /** Deleted first. */
  narinfoKeys: string[];
  /** NARs, listings and logs of deleted paths, then orphan NARs; deleted after every narinfo. */
  dataKeys: string[];
  orphans: OrphanCandidate[];
  abortUploads: PendingUpload[];
  /** Expired or broken, but a kept path references them. */
  keptBecauseReferenced: string[];
  pathBytes: number;
  orphanBytes: number;
  sizeBefore: number;
  sizeAfter: number;
  /** The size the cap aims at, when a cap is set. */
  sizeTarget?: number;
  /** False only when the cap is exceeded afterwards because everything left is pinned or referenced. */
  targetMet: boolean;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
export const GIB = 1024 ** 3;

export function planPrune(input: PruneInput): PrunePlan {
  const { now, settings } = input;
  const graph = new PathGraph(input.paths);
  const graceMs = settings.orphanGraceHours * HOUR_MS;
  const pinned = (p: PrunePath) =>
    p.malformed || now - p.uploadedAt < graceMs || (input.protectedHashParts?.has(p.hashPart) ?? false);
  const expired = (p: PrunePath) => now - p.uploadedAt > settings.retentionDays * DAY_MS;
  const broken = graph.referrersClosure(
    input.paths.filter((p) => !pinned(p) && p.narKey !== undefined && p.narObjectSize === undefined),
  );
  const roots = input.paths.filter((p) => pinned(p) || (!expired(p) && !broken.has(p.hashPart)));
  const kept = graph.reachable(roots);

  const ledger = new Ledger(input.paths);
  for (const p of input.paths) {
    if (!kept.has(p.hashPart)) ledger.remove(p, broken.has(p.hashPart) ? 'broken' : 'expired');
  }
  const rootSet = new Set(roots.map((p) => p.hashPart));
  const keptBecauseReferenced = input.paths
    .filter((p) => kept.has(p.hashPart) && !rootSet.has(p.hashPart))
    .map((p) => p.hashPart);

  const orphans = input.orphanCandidates.filter((o) => now - o.lastModified >= graceMs);
  const orphanBytes = orphans.reduce((n, o) => n + o.size, 0);
  let sizeAfter = input.bucketBytes - ledger.bytes - orphanBytes;
  let sizeTarget: number | undefined;
  let targetMet = true;
  if (settings.maxSizeGb !== undefined) {
    const cap = settings.maxSizeGb * GIB;
    if (sizeAfter > cap) {
      sizeTarget = Math.floor((cap * settings.targetPercentage) / 100);
      sizeAfter = evictBySize(graph, kept, pinned, ledger, sizeAfter, sizeTarget);
      targetMet = sizeAfter <= sizeTarget;
    }
  }
  return {
    paths: ledger.planned,
    narinfoKeys: graph
      .referrersFirst(ledger.planned.map((d) => d.hashPart))
      .map((h) => graph.get(h).narinfoKey),
    dataKeys: [...ledger.dataKeys, ...orphans.map((o) => o.key)],
    orphans,
    abortUploads: input.pendingUploads.filter((u) => now - u.initiated >= graceMs),
    keptBecauseReferenced: keptBecauseReferenced.filter((h) => !ledger.removed.has(h)),
    pathBytes: ledger.bytes,
    orphanBytes,
    sizeBefore: input.bucketBytes,
    sizeAfter,
    ...(sizeTarget !== undefined ? { sizeTarget } : {}),
    targetMet,
  };
}

/** Rule 5: evicts root closures oldest first until `size` is at most `target`; returns the size. */
function evictBySize(
  graph: PathGraph<PrunePath>,
  kept: Set<string>,
  pinned: (p: PrunePath) => boolean,
  ledger: Ledger,
  size: number,
  target: number,
): number {
  const referrers = new Map<string, number>();
  for (const h of kept) {
    for (const r of graph.get(h).references) {
      if (kept.has(r) && r !== h) referrers.set(r, (referrers.get(r) ?? 0) + 1);
    }
  }
  const candidates = [...kept]
    .map((h) => graph.get(h))
    .filter((p) => (referrers.get(p.hashPart) ?? 0) === 0 && !pinned(p))
    .sort((a, b) => a.uploadedAt - b.uploadedAt || (a.hashPart < b.hashPart ? -1 : 1));
  for (const root of candidates) {
    if (size <= target) break;
    const stack = [root];
    for (let p = stack.pop(); p !== undefined; p = stack.pop()) {
      size -= ledger.remove(p, 'size', root.hashPart);
      for (const r of p.references) {
        if (!kept.has(r) || r === p.hashPart) continue;
        const left = (referrers.get(r) ?? 0) - 1;
        referrers.set(r, left);
        const ref = graph.get(r);
        if (left === 0 && !pinned(ref)) stack.push(ref);
      }
    }
  }
  return size;
}

/** Records deletions: keys in order, bytes freed, and NARs shared by several narinfos. */
class Ledger {
  readonly planned: PlannedPath[] = [];
  readonly dataKeys: string[] = [];
  readonly removed = new Set<string>();
  bytes = 0;
  private readonly narOwners = new Map<string, number>();

  constructor(paths: readonly PrunePath[]) {
    for (const p of paths) {
      if (p.narKey !== undefined) this.narOwners.set(p.narKey, (this.narOwners.get(p.narKey) ?? 0) + 1);
    }
  }

  /** Returns the bytes freed. */
  remove(p: PrunePath, reason: DeleteReason, evictedWith?: string): number {
    if (this.removed.has(p.hashPart)) return 0;
    this.removed.add(p.hashPart);
    let bytes = p.narinfoSize;
    if (p.narKey !== undefined) {
      const owners = (this.narOwners.get(p.narKey) ?? 1) - 1;
      this.narOwners.set(p.narKey, owners);
      if (owners === 0 && p.narObjectSize !== undefined) {
        this.dataKeys.push(p.narKey);
        bytes += p.narObjectSize;
      }
    }
    for (const o of p.extraObjects) {
      this.dataKeys.push(o.key);
      bytes += o.size;
    }
    const planned: PlannedPath = { hashPart: p.hashPart, reason, uploadedAt: p.uploadedAt, bytes };
    if (evictedWith !== undefined) planned.evictedWith = evictedWith;
    this.planned.push(planned);
    this.bytes += bytes;
    return bytes;
  }
}
