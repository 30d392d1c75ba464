// Which closure members are already in the cache. The local SQLite cache answers first; the bucket
// is asked only about the rest, with one HEAD of `<hash>.narinfo` each (bounded in parallel), or with
// a listing of the root when that costs fewer requests. A narinfo's presence means the path is
// committed (it is written last), so it is the only object worth asking about.
import pLimit from 'p-limit';
import { StorageError } from '../errors.js';
import type { PresenceCache } from '../state/presence.js';
import type { ObjectStore } from '../storage/object-store.js';
import { hashPartOfNarinfoKey, narinfoKey } from '../format/bucket-layout.js';

export interface PresenceResult {
  /** Hash parts of candidates known to be in the cache. */
  present: Set<string>;
  /** How many of `present` the bucket (not the local cache) confirmed. */
  learnedFromBucket: number;
  requests: number;
}

export interface PresenceOptions {
  /** Skip the local cache (`--force-scan`): the bucket is the truth. */
  ignoreLocal?: boolean;
  signal?: AbortSignal;
}

/** HEADs of narinfos in flight at once: enough to hide a round trip, few enough for any endpoint. */
const HEAD_CONCURRENCY = 32;

/** ListObjectsV2 returns up to 1000 keys a page; each path costs about two keys (narinfo + NAR). */
const KEYS_PER_PAGE = 1000;
const KEYS_PER_PATH = 2;

/** Up to this many unknown paths are always HEADed: a listing's cost is the whole bucket's size. */
const ALWAYS_HEAD = 256;

/**
 * Pure: HEAD each unknown path, or list the bucket, whichever is expected to cost fewer requests.
 * The bucket's size is estimated from the local cache, which may be fresh and know nothing; so a
 * handful of paths is never answered by a listing, however small the bucket looks.
 */
export function chooseStrategy(unknown: number, knownBucketPaths: number): 'head' | 'list' {
  if (unknown <= ALWAYS_HEAD) return 'head';
  const listPages = Math.ceil(((knownBucketPaths + unknown) * KEYS_PER_PATH) / KEYS_PER_PAGE) + 1;
  return unknown > listPages ? 'list' : 'head';
}

export async function checkPresence(
  hashParts: readonly string[],
  cache: PresenceCache,
  store: ObjectStore,
  options: PresenceOptions = {},
): Promise<PresenceResult> {
  const present = new Set<string>();
  const unknown = options.ignoreLocal ? [...hashParts] : cache.filterMissing([...hashParts]);
  const unknownSet = new Set(unknown);
  for (const h of hashParts) if (!unknownSet.has(h)) present.add(h);
  if (unknown.length === 0) return { present, learnedFromBucket: 0, requests: 0 };

  let requests = 0;
  const found: string[] = [];
  let strategy = chooseStrategy(unknown.length, cache.count());
  if (strategy === 'list') {
    try {
      let keys = 0;
      const seen: string[] = [];
      for await (const obj of store.list('', options.signal)) {
        keys++;
        const h = hashPartOfNarinfoKey(obj.key);
        if (h === undefined) continue;
        seen.push(h);
        if (unknownSet.has(h)) found.push(h);
      }
      requests += Math.max(1, Math.ceil(keys / KEYS_PER_PAGE));
      // The listing paid for every narinfo in the bucket: remember them all, which also makes the
      // next size estimate right.
      cache.learn(seen);
    } catch (err) {
      // A store that cannot list (an HTTP cache without WebDAV) is asked path by path instead.
      if (!(err instanceof StorageError && err.code === 'E_STORAGE_NO_LISTING')) throw err;
      strategy = 'head';
    }
  }
  if (strategy === 'head') {
    const limit = pLimit(HEAD_CONCURRENCY);
    await Promise.all(
      unknown.map((h) =>
        limit(async () => {
          requests++;
          if (await store.head(narinfoKey(h), options.signal)) found.push(h);
        }),
      ),
    );
    cache.learn(found);
  }
  for (const h of found) present.add(h);
  return { present, learnedFromBucket: found.length, requests };
}
