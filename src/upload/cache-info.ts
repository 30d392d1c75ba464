// `nix-cache-info` tells Nix which store the cache serves and how to rank it. It is written when it
// is missing or says something else, not on every run; a bucket that serves another store directory
// is refused, since its paths could never be substituted into ours.
import { ConfigError } from '../errors.js';
import { parseNixCacheInfo, renderNixCacheInfo, type NixCacheInfo } from '../format/nix-cache-info.js';
import type { ObjectStore } from '../storage/object-store.js';
import { CONTENT_TYPE_NIX_CACHE_INFO, NIX_CACHE_INFO_KEY } from '../format/bucket-layout.js';

export type CacheInfoOutcome = 'unchanged' | 'written';

export interface WantedCacheInfo {
  storeDir: string;
  priority: number;
}

export async function ensureNixCacheInfo(
  store: ObjectStore,
  wanted: WantedCacheInfo,
): Promise<CacheInfoOutcome> {
  const info = await checkNixCacheInfo(store, wanted);
  if (info === undefined) return 'unchanged';
  await writeNixCacheInfo(store, info);
  return 'written';
}

/**
 * Reads nix-cache-info; throws ConfigError for a bucket of another store. Returns what to write,
 * or undefined when it is right already. Split from the write so an upload reads it before its
 * first NAR and writes it before its first narinfo, beside the NARs.
 */
export async function checkNixCacheInfo(
  store: ObjectStore,
  wanted: WantedCacheInfo,
): Promise<NixCacheInfo | undefined> {
  const existing = await store.get(NIX_CACHE_INFO_KEY);
  let current: NixCacheInfo | undefined;
  if (existing) {
    try {
      current = parseNixCacheInfo(existing.toString('utf8'));
    } catch {
      current = undefined; // unreadable: replace it with a good one
    }
  }
  if (current && current.storeDir !== wanted.storeDir) {
    throw new ConfigError(
      `${store.description} serves store ${current.storeDir}, not ${wanted.storeDir}; use another bucket`,
    );
  }
  if (current && current.wantMassQuery && current.priority === wanted.priority) return undefined;
  return {
    storeDir: wanted.storeDir,
    wantMassQuery: true,
    priority: wanted.priority,
    extra: current?.extra ?? [],
  };
}

export async function writeNixCacheInfo(store: ObjectStore, info: NixCacheInfo): Promise<void> {
  await store.putBytes(NIX_CACHE_INFO_KEY, renderNixCacheInfo(info), {
    contentType: CONTENT_TYPE_NIX_CACHE_INFO,
  });
}
