// Reading the bucket for a prune: one listing of everything (sizes, LastModified), then GETs only
// of narinfos the local narinfo_meta table does not know in their current form (bounded in
// parallel). Works on buckets written by the original Loft and by `nix copy`, because it follows
// each narinfo's URL instead of assuming a key layout for NARs. --populate-cache reads narinfos the
// same way (readNarinfoMetas), so neither counts a broken narinfo as a path the cache holds.
//
// A narinfo that cannot be parsed (garbage, no StorePath, a bad hash, a StorePath that is not the
// path its key names) never stops either: it is marked malformed and a warning names its key, on
// every run (the row in narinfo_meta remembers that it is malformed, not why).
import pLimit from 'p-limit';
import { hashPartOfNarinfoKey, narinfoKey } from '../format/bucket-layout.js';
import type { Logger } from '../log.js';
import type { ObjectInfo, ObjectStore } from '../storage/object-store.js';
import { multipartUploadsOf } from '../storage/multipart-uploads.js';
import type { OrphanCandidate, PendingUpload, PrunePath } from './policy.js';
import type { NarinfoMeta, PruneDb } from '../state/prune-db.js';
import { summarizeNarinfo } from './narinfo-summary.js';
import { extraObjectsOf, readExtrasIndex, sharedCounts, type ExtrasIndex } from './extras-index.js';

export interface InventoryDeps {
  store: ObjectStore;
  db: PruneDb;
  storeDir: string;
  logger: Logger;
  /** Narinfo GETs in flight at once. Default 32. */
  concurrency?: number;
  signal?: AbortSignal;
}

export interface Inventory {
  paths: PrunePath[];
  orphanCandidates: OrphanCandidate[];
  pendingUploads: PendingUpload[];
  bucketBytes: number;
  objects: number;
  /** Narinfos fetched and parsed in this inventory (the rest came from narinfo_meta). */
  narinfosRead: number;
  malformed: number;
  /** Keys of every narinfo listed with its LastModified, to tell a later listing what changed. */
  narinfoStamps: Map<string, number>;
  /** Every key listed. */
  keys: Set<string>;
}

/** Real narinfos are a few KiB (about 80 bytes per reference); a larger object is not fetched. */
export const MAX_NARINFO_BYTES = 8 * 1024 * 1024;
/** Malformed narinfos named one by one in the log per run; the rest are counted in one line. */
const WARNINGS_SHOWN = 20;

/** Every object in the bucket by key, and their total size. */
export async function listBucket(
  store: ObjectStore,
  signal?: AbortSignal,
): Promise<{ objects: Map<string, ObjectInfo>; bucketBytes: number }> {
  const objects = new Map<string, ObjectInfo>();
  let bucketBytes = 0;
  for await (const o of store.list('', signal)) {
    objects.set(o.key, o);
    bucketBytes += o.size;
  }
  return { objects, bucketBytes };
}

export async function takeInventory(deps: InventoryDeps): Promise<Inventory> {
  const { objects, bucketBytes } = await listBucket(deps.store, deps.signal);
  const { metas, read } = await readNarinfoMetas(objects, deps, 'kept, with everything it may name');
  const narinfoStamps = new Map<string, number>();
  for (const m of metas) narinfoStamps.set(m.hashPart, m.lastModified);
  const named = new Set<string>();
  for (const m of metas) if (m.narUrl !== undefined) named.add(m.narUrl);
  const malformed = metas.filter((m) => m.malformed);
  const blind = malformed.some((m) => m.narUrl === undefined);
  if (blind) {
    deps.logger.warn('a malformed narinfo names no NAR, so no NAR is treated as an orphan in this prune');
  }
  const orphanCandidates: OrphanCandidate[] = blind
    ? []
    : [...objects.values()]
        .filter((o) => o.key.startsWith('nar/') && !named.has(o.key))
        .map((o) => ({ key: o.key, size: o.size, lastModified: o.lastModified.getTime() }));
  return {
    paths: toPaths(metas, objects, await readExtrasIndex(objects, deps)),
    orphanCandidates,
    pendingUploads: await pendingUploads(deps),
    bucketBytes,
    objects: objects.size,
    narinfosRead: read,
    malformed: malformed.length,
    narinfoStamps,
    keys: new Set(objects.keys()),
  };
}

/**
 * What each narinfo in `objects` says, from narinfo_meta when it knows the object in its current
 * form, else by GET (removing from `objects` a narinfo deleted since the listing). Malformed ones
 * are returned marked, each logged as a warning "malformed narinfo: <outcome>" naming its key.
 */
export async function readNarinfoMetas(
  objects: Map<string, ObjectInfo>,
  deps: Omit<InventoryDeps, 'signal'> & { signal?: AbortSignal | undefined },
  outcome: string,
): Promise<{ metas: NarinfoMeta[]; read: number }> {
  const known = deps.db.all();
  const metas: NarinfoMeta[] = [];
  const toRead: Array<{ hashPart: string; obj: ObjectInfo }> = [];
  for (const obj of objects.values()) {
    const hashPart = hashPartOfNarinfoKey(obj.key);
    if (hashPart === undefined) continue;
    const m = known.get(hashPart);
    known.delete(hashPart);
    if (m && m.narinfoSize === obj.size && m.lastModified === obj.lastModified.getTime()) metas.push(m);
    else toRead.push({ hashPart, obj });
  }
  // Rows left in `known` are narinfos no longer in the bucket.
  if (known.size > 0) deps.db.remove([...known.keys()]);
  const limit = pLimit(deps.concurrency ?? 32);
  const fresh: NarinfoMeta[] = [];
  const problems = new Map<string, string>();
  await Promise.all(
    toRead.map(({ hashPart, obj }) =>
      limit(async () => {
        const stamp = { hashPart, size: obj.size, lastModified: obj.lastModified.getTime() };
        if (obj.size > MAX_NARINFO_BYTES) {
          problems.set(hashPart, `${obj.size} bytes, too large to be a narinfo; not read`);
          fresh.push({ ...stamp, narinfoSize: obj.size, references: [], malformed: true });
          return;
        }
        const body = await deps.store.get(obj.key, deps.signal);
        if (body === undefined) {
          objects.delete(obj.key); // deleted since the listing
          return;
        }
        const { meta, problem } = summarizeNarinfo(stamp, body.toString('utf8'), deps.storeDir);
        if (problem !== undefined) problems.set(hashPart, problem);
        fresh.push(meta);
      }),
    ),
  );
  deps.db.putMany(fresh);
  const all = [...metas, ...fresh];
  warnMalformed(all, problems, deps, outcome);
  return { metas: all, read: toRead.length };
}

/**
 * One warning per malformed narinfo, naming its key, once per deps object: a prune takes two
 * inventories with the same deps and the second must not repeat the first's warnings; the daemon
 * keeps one deps object for its scheduled prunes, so its journal names each broken key once.
 */
const warnedPerRun = new WeakMap<object, Set<string>>();

function warnMalformed(
  metas: readonly NarinfoMeta[],
  problems: ReadonlyMap<string, string>,
  deps: Pick<InventoryDeps, 'logger'>,
  outcome: string,
): void {
  const warned = warnedPerRun.get(deps) ?? new Set<string>();
  warnedPerRun.set(deps, warned);
  const todo = metas.filter((m) => m.malformed && !warned.has(m.hashPart));
  todo.sort((a, b) => (a.hashPart < b.hashPart ? -1 : 1));
  for (const m of todo.slice(0, WARNINGS_SHOWN)) {
    // A row from narinfo_meta says that the narinfo is malformed, not why.
    const problem = problems.get(m.hashPart) ?? 'unchanged since an earlier run found it malformed';
    deps.logger.warn({ key: `${m.hashPart}.narinfo`, problem }, `malformed narinfo: ${outcome}`);
  }
  if (todo.length > WARNINGS_SHOWN) {
    deps.logger.warn(
      { count: todo.length - WARNINGS_SHOWN },
      `more malformed narinfos: ${outcome} (not named one by one)`,
    );
  }
  for (const m of todo) warned.add(m.hashPart);
}

function toPaths(
  metas: readonly NarinfoMeta[],
  objects: Map<string, ObjectInfo>,
  extras: ExtrasIndex,
): PrunePath[] {
  // Listings, logs, realisations and debug-info entries go with their path (prune/extras-index.ts).
  const shared = sharedCounts(metas);
  return metas.map((m) => {
    const extraObjects = extraObjectsOf(m, objects, extras, shared);
    const p: PrunePath = {
      hashPart: m.hashPart,
      narinfoKey: narinfoKey(m.hashPart),
      narinfoSize: m.narinfoSize,
      extraObjects,
      references: m.references,
      uploadedAt: m.lastModified,
      malformed: m.malformed,
    };
    if (m.narUrl !== undefined) {
      p.narKey = m.narUrl;
      const nar = objects.get(m.narUrl);
      if (nar) p.narObjectSize = nar.size;
    }
    return p;
  });
}

async function pendingUploads(deps: InventoryDeps): Promise<PendingUpload[]> {
  const mp = multipartUploadsOf(deps.store);
  if (!mp) return [];
  const out: PendingUpload[] = [];
  for await (const u of mp.listMultipartUploads(deps.signal)) {
    out.push({ key: u.key, uploadId: u.uploadId, initiated: u.initiated.getTime() });
  }
  return out;
}
