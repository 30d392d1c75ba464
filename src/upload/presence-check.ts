// Which closure members are already in the cache. The local SQLite cache answers first; the bucket
// is asked only about the rest, with one HEAD of `<hash>.narinfo` each (bounded in parallel), or with
// a listing of the bucket's top level, which answers up to 1000 paths per request. A narinfo's presence means the path is
// committed (it is written last), so it is the only object worth asking about.
import pLimit from 'p-limit';
import { StorageError } from '../errors.js';
import type { PresenceCache } from '../state/presence.js';
import { topLevelObjects, type ObjectStore } from '../storage/object-store.js';
import { hashPartOfNarinfoKey, narinfoKey } from '../format/bucket-layout.js';

export interface PresenceResult {
  /** Hash parts of candidates known to be in the cache. */
  present: Set<string>;
  /** How many of `present` the bucket (not the local cache) confirmed. */
  learnedFromBucket: number;
  requests: number;
  /** ETags of the narinfos the bucket answered about (listed or HEADed), by hash part. */
  etags: Map<string, string>;
  /** A listing read the whole top level: `etags` has every narinfo of the bucket. */
  listedAll: boolean;
  /**
   * With `listedAll`: the bucket's top-level folders at the time (`nar/`, `log/`, ...). A folder
   * missing here held no object then, so nothing under it needs a HEAD (path-extras.ts).
   */
  folders?: ReadonlySet<string>;
}

export interface PresenceOptions {
  /** Skip the local cache (`--force-scan`): the bucket is the truth. */
  ignoreLocal?: boolean;
  signal?: AbortSignal;
}

/**
 * HEADs of narinfos in flight at once: enough to hide a round trip (48 answers per 40 ms round
 * trip), under the HTTP agent's 50 sockets, and lowered by the request limiter if a server throttles.
 */
export const HEAD_CONCURRENCY = 48;

/** ListObjectsV2 returns up to 1000 keys a page; a top-level listing has one key per path. */
const KEYS_PER_PAGE = 1000;

export type Strategy = { kind: 'head' } | { kind: 'list'; maxKeys: number };

/**
 * Pure: how to ask the bucket about `unknown` paths. One wave of HEADs costs one round trip, so
 * that many paths are always HEADed. Beyond it, a listing of the bucket's top level answers up to
 * 1000 paths per round trip, but costs the whole bucket's size, which is only estimated (from the
 * local cache, which may be fresh and know nothing). So the listing gets a budget of as many pages
 * as the HEADs would take round trips, and the paths it did not reach are HEADed: a huge bucket
 * costs at most twice the HEADs, a small one a page or two. A bucket the cache knows to be too
 * large to list within the budget is not listed at all.
 */
export function chooseStrategy(unknown: number, knownBucketPaths: number): Strategy {
  if (unknown <= HEAD_CONCURRENCY) return { kind: 'head' };
  const headRounds = Math.ceil(unknown / HEAD_CONCURRENCY);
  const expectedPages = Math.ceil(knownBucketPaths / KEYS_PER_PAGE);
  if (expectedPages > headRounds) return { kind: 'head' };
  return { kind: 'list', maxKeys: headRounds * KEYS_PER_PAGE };
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
  const etags = new Map<string, string>();
  if (unknown.length === 0) return { present, learnedFromBucket: 0, requests: 0, etags, listedAll: false };

  let requests = 0;
  const found: string[] = [];
  let toHead = unknown;
  let listedAll = false;
  let folders: Set<string> | undefined;
  const strategy = chooseStrategy(unknown.length, cache.count());
  if (strategy.kind === 'list') {
    try {
      const seenFolders = new Set<string>();
      const listed = await presenceFromListing(
        unknown,
        store,
        strategy.maxKeys,
        { etags, folders: seenFolders },
        options.signal,
      );
      listedAll = listed.notReached.length === 0 && listed.complete;
      if (listed.complete) folders = seenFolders;
      requests += listed.pages;
      found.push(...listed.found);
      toHead = listed.notReached;
      // The listing paid for every narinfo it read: remember them all, which also makes the next
      // size estimate right.
      cache.learn(listed.seen);
    } catch (err) {
      // A store that cannot list (an HTTP cache without WebDAV) is asked path by path instead.
      if (!(err instanceof StorageError && err.code === 'E_STORAGE_NO_LISTING')) throw err;
    }
  }
  if (toHead.length > 0) {
    const limit = pLimit(HEAD_CONCURRENCY);
    const headed: string[] = [];
    await Promise.all(
      toHead.map((h) =>
        limit(async () => {
          requests++;
          const info = await store.head(narinfoKey(h), options.signal);
          if (info === undefined) return;
          headed.push(h);
          if (info.etag !== undefined) etags.set(h, info.etag);
        }),
      ),
    );
    cache.learn(headed);
    found.push(...headed);
  }
  for (const h of found) present.add(h);
  return {
    present,
    learnedFromBucket: found.length,
    requests,
    etags,
    listedAll,
    ...(listedAll && folders ? { folders } : {}),
  };
}

interface ListedPresence {
  found: string[];
  /** Every narinfo hash the listing read (present whether asked about or not). */
  seen: string[];
  /** Unknown paths past the point where the listing stopped: still to be asked. */
  notReached: string[];
  pages: number;
  /** The listing reached the end of the top level. */
  complete: boolean;
}

/**
 * Reads the bucket's top level in key order, at most `maxKeys` keys. Every unknown path whose
 * narinfo key sorts at or before the last key read is decided (present if it was listed); a listing
 * that ran out of budget leaves the rest undecided.
 */
async function presenceFromListing(
  unknown: readonly string[],
  store: ObjectStore,
  maxKeys: number,
  into: { etags: Map<string, string>; folders: Set<string> },
  signal: AbortSignal | undefined,
): Promise<ListedPresence> {
  const { etags, folders } = into;
  const unknownSet = new Set(unknown);
  const found: string[] = [];
  const seen: string[] = [];
  let keys = 0;
  let lastKey: string | undefined;
  let complete = true;
  for await (const obj of topLevelObjects(store, signal, folders)) {
    keys++;
    lastKey = obj.key;
    const h = hashPartOfNarinfoKey(obj.key);
    if (h !== undefined) {
      seen.push(h);
      if (obj.etag !== undefined) etags.set(h, obj.etag);
      if (unknownSet.has(h)) found.push(h);
    }
    // Checked after the key, not before the next: stopping here asks for no further page.
    if (keys >= maxKeys) {
      complete = false;
      break;
    }
  }
  const reached = (h: string) => complete || (lastKey !== undefined && narinfoKey(h) <= lastKey);
  return {
    found,
    seen,
    notReached: unknown.filter((h) => !reached(h)),
    pages: Math.max(1, Math.ceil(keys / KEYS_PER_PAGE)),
    complete,
  };
}
