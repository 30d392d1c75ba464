// Which path each extra object of the bucket belongs to, for pruning it with its path
// (format/bucket-layout.ts lists them). A listing and a build log are found from the narinfo's
// hash and Deriver; realisations and debug-info entries name their path only in their body, so
// each is read once per prune (they are small, and only content-addressed outputs and paths with
// `lib/debug/.build-id` have any). An entry that cannot be read or parsed belongs to no path and
// is left alone: pruning only ever deletes what it knows belongs to a deleted path.
import pLimit from 'p-limit';
import { buildLogKey, listingKey } from '../format/bucket-layout.js';
import { parseDebugInfo } from '../format/debug-info.js';
import { parseRealisationKey, parseRealisationV1, parseRealisationV2 } from '../format/realisation.js';
import type { ObjectInfo, ObjectStore } from '../storage/object-store.js';
import type { NarinfoMeta } from '../state/prune-db.js';
import type { PruneObject } from './policy.js';

export interface ExtrasIndex {
  /** Realisation keys by the hash part of the output path they realise. */
  realisations: Map<string, PruneObject[]>;
  /** debuginfo keys by the NAR key they point at. */
  debugInfo: Map<string, PruneObject[]>;
}

/** Reads every realisation and debuginfo object of the listing (bounded in parallel). */
export async function readExtrasIndex(
  objects: ReadonlyMap<string, ObjectInfo>,
  deps: { store: ObjectStore; storeDir: string; concurrency?: number; signal?: AbortSignal | undefined },
): Promise<ExtrasIndex> {
  const index: ExtrasIndex = { realisations: new Map(), debugInfo: new Map() };
  const limit = pLimit(deps.concurrency ?? 32);
  const add = (m: Map<string, PruneObject[]>, k: string, o: ObjectInfo) =>
    m.set(k, [...(m.get(k) ?? []), { key: o.key, size: o.size }]);
  const reads = [...objects.values()]
    .filter((o) => o.key.startsWith('debuginfo/') || parseRealisationKey(o.key) !== undefined)
    .map((o) =>
      limit(async () => {
        const body = (await deps.store.get(o.key, deps.signal))?.toString('utf8');
        if (body === undefined) return;
        try {
          if (o.key.startsWith('debuginfo/')) add(index.debugInfo, parseDebugInfo(body).narKey, o);
          else add(index.realisations, outPathOf(o.key, body, deps.storeDir).slice(0, 32), o);
        } catch {
          // Unreadable: owned by no path, never deleted by pruning (verify names it).
        }
      }),
    );
  await Promise.all(reads);
  return index;
}

function outPathOf(key: string, body: string, storeDir: string): string {
  const k = parseRealisationKey(key)!;
  return k.layout === 1
    ? parseRealisationV1(body, storeDir).outPath
    : parseRealisationV2(body, k, storeDir).outPath;
}

/**
 * The extra objects that go with one path. Objects several paths share (a derivation's log, a NAR's
 * debug-info entries) go only with the one path that has them in the bucket, so deleting that path
 * never takes one a kept narinfo still needs.
 */
export function extraObjectsOf(
  m: NarinfoMeta,
  objects: ReadonlyMap<string, ObjectInfo>,
  index: ExtrasIndex,
  shared: { outputsOf: ReadonlyMap<string, number>; narOwners: ReadonlyMap<string, number> },
): PruneObject[] {
  const out: PruneObject[] = [];
  const listing = objects.get(listingKey(m.hashPart));
  if (listing) out.push({ key: listing.key, size: listing.size });
  if (m.deriver !== undefined && shared.outputsOf.get(m.deriver) === 1) {
    const log = objects.get(buildLogKey(m.deriver));
    if (log) out.push({ key: log.key, size: log.size });
  }
  out.push(...(index.realisations.get(m.hashPart) ?? []));
  if (m.narUrl !== undefined && shared.narOwners.get(m.narUrl) === 1)
    out.push(...(index.debugInfo.get(m.narUrl) ?? []));
  return out;
}

/** How many narinfos name each deriver and each NAR. */
export function sharedCounts(metas: readonly NarinfoMeta[]): {
  outputsOf: Map<string, number>;
  narOwners: Map<string, number>;
} {
  const outputsOf = new Map<string, number>();
  const narOwners = new Map<string, number>();
  for (const m of metas) {
    if (m.deriver) outputsOf.set(m.deriver, (outputsOf.get(m.deriver) ?? 0) + 1);
    if (m.narUrl) narOwners.set(m.narUrl, (narOwners.get(m.narUrl) ?? 0) + 1);
  }
  return { outputsOf, narOwners };
}
