// Walking a cache for `loft verify`: one listing, then every narinfo fetched (bounded in parallel)
// and judged by the pure check in format/narinfo-check.ts; with --check-contents each NAR is also
// streamed and hashed. Only what Nix reads is judged: nix-cache-info, `<hash>.narinfo` at the root
// and the NARs their URLs name, plus the extras Nix follows from them (realisations, listings,
// debug-info entries: format/extra-check.ts). Every other object (build logs, anything another tool
// or another part of loft keeps under its own prefix) is not ours to judge and is left out entirely.
import pLimit from 'p-limit';
import { checkExtra, isCheckedExtraKey } from '../format/extra-check.js';
import { checkNarinfo } from '../format/narinfo-check.js';
import { parseNixCacheInfo } from '../format/nix-cache-info.js';
import type { PublicKey } from '../format/signing-key.js';
import { parseStorePath } from '../format/store-path.js';
import { MAX_NARINFO_BYTES } from '../prune/inventory.js';
import { summarizeNarinfo } from '../prune/narinfo-summary.js';
import type { ObjectStore } from '../storage/object-store.js';
import { hashPartOfNarinfoKey, NIX_CACHE_INFO_KEY } from '../format/bucket-layout.js';
import { checkNarContents } from './nar-contents.js';
import type { Problem } from './problems.js';

export interface ScanDeps {
  store: ObjectStore;
  storeDir: string;
  /** Judge signatures by this key; undefined (no signing key configured): not judged. */
  publicKey?: PublicKey;
  checkContents: boolean;
  /** Narinfo GETs in flight at once (default 16); NAR downloads use a quarter of it. */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (p: ScanProgress) => void;
}

export interface ScanProgress {
  total: number;
  done: number;
  problems: number;
  bytesRead: number;
}

/** A narinfo of the cache as the repair needs it: its path, and what it references. */
export interface ScannedPath {
  hashPart: string;
  /** Hash parts of its References without itself (read leniently when the narinfo does not parse). */
  references: string[];
}

export interface ScanResult {
  problems: Problem[];
  paths: Map<string, ScannedPath>;
  objects: number;
  narsChecked: number;
  /** NARs --check-contents could not decode here (bzip2, lz4, lzip), named in the log. */
  narsNotChecked: Array<{ key: string; reason: string }>;
  bytesRead: number;
}

export async function scanBucket(deps: ScanDeps): Promise<ScanResult> {
  const sizes = new Map<string, number>();
  for await (const o of deps.store.list('', deps.signal)) sizes.set(o.key, o.size);
  return scanObjects(deps, sizes);
}

/**
 * Judges every narinfo among `sizes` (key -> size: what a listing or the closure walk of
 * closure-scan.ts found), and nix-cache-info when there is any narinfo.
 */
export async function scanObjects(deps: ScanDeps, sizes: ReadonlyMap<string, number>): Promise<ScanResult> {
  const narinfoKeys = [...sizes.keys()].filter((k) => hashPartOfNarinfoKey(k) !== undefined).sort();
  const result: ScanResult = {
    problems: [],
    paths: new Map(),
    objects: sizes.size,
    narsChecked: 0,
    narsNotChecked: [],
    bytesRead: 0,
  };
  const progress = { total: narinfoKeys.length, done: 0 };
  const report = () =>
    deps.onProgress?.({ ...progress, problems: result.problems.length, bytesRead: result.bytesRead });
  const narinfoLimit = pLimit(deps.concurrency ?? 16);
  const narLimit = pLimit(Math.max(1, Math.floor((deps.concurrency ?? 16) / 4)));
  await Promise.all(
    narinfoKeys.map((key) =>
      narinfoLimit(async () => {
        await scanOne(key, sizes, deps, result, narLimit);
        progress.done++;
        report();
      }),
    ),
  );
  const extraKeys = [...sizes.keys()].filter(isCheckedExtraKey);
  await Promise.all(extraKeys.map((key) => narinfoLimit(() => scanExtra(key, sizes, deps, result))));
  if (narinfoKeys.length > 0) result.problems.push(...(await cacheInfoProblems(deps)));
  result.problems.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return result;
}

async function scanOne(
  key: string,
  sizes: ReadonlyMap<string, number>,
  deps: ScanDeps,
  result: ScanResult,
  narLimit: ReturnType<typeof pLimit>,
): Promise<void> {
  const hashPart = hashPartOfNarinfoKey(key)!;
  const size = sizes.get(key) ?? 0;
  if (size > MAX_NARINFO_BYTES) {
    // Not fetched: a real narinfo is a few KiB, and this one would be held in memory whole.
    result.paths.set(hashPart, { hashPart, references: [] });
    result.problems.push({
      kind: 'unparsable',
      key,
      hashPart,
      detail: `${size} bytes, too large to be a narinfo; not read`,
    });
    return;
  }
  const body = await deps.store.get(key, deps.signal);
  if (body === undefined) return; // deleted since the listing: nothing left to judge
  const text = body.toString('utf8');
  const check = checkNarinfo({
    hashPart,
    text,
    sizes,
    storeDir: deps.storeDir,
    ...(deps.publicKey ? { publicKey: deps.publicKey } : {}),
  });
  const problems: Problem[] = check.problems.map((p) => ({ ...p, key, hashPart }));
  result.paths.set(hashPart, { hashPart, references: referencesOf(check, hashPart, text, deps.storeDir) });
  const narIntact = !problems.some((p) => p.kind === 'nar-missing' || p.kind === 'nar-size');
  if (deps.checkContents && check.narinfo && check.narKey !== undefined && narIntact) {
    const { narinfo, narKey } = check;
    const outcome = await narLimit(() => checkNarContents(deps.store, narKey, narinfo, deps.signal));
    result.bytesRead += outcome.bytesRead;
    if (outcome.checked) {
      result.narsChecked++;
      for (const detail of outcome.problems) problems.push({ kind: 'nar-contents', key, hashPart, detail });
    } else result.narsNotChecked.push({ key, reason: outcome.reason });
  }
  result.problems.push(...problems);
}

async function scanExtra(
  key: string,
  sizes: ReadonlyMap<string, number>,
  deps: ScanDeps,
  result: ScanResult,
): Promise<void> {
  if ((sizes.get(key) ?? 0) > MAX_NARINFO_BYTES) {
    result.problems.push({ kind: 'extra', key, detail: 'too large to be what its key names; not read' });
    return;
  }
  const body = await deps.store.get(key, deps.signal);
  if (body === undefined) return;
  const details = checkExtra({
    key,
    text: body.toString('utf8'),
    sizes,
    storeDir: deps.storeDir,
    ...(deps.publicKey ? { publicKey: deps.publicKey } : {}),
  });
  for (const detail of details) result.problems.push({ kind: 'extra', key, detail });
}

function referencesOf(
  check: ReturnType<typeof checkNarinfo>,
  hashPart: string,
  text: string,
  storeDir: string,
): string[] {
  if (!check.narinfo) {
    return summarizeNarinfo({ hashPart, size: text.length, lastModified: 0 }, text, storeDir).meta.references;
  }
  const refs = check.narinfo.references.map((r) => parseStorePath(`${storeDir}/${r}`, storeDir).hashPart);
  return [...new Set(refs)].filter((h) => h !== hashPart);
}

/** Nix reads nix-cache-info first and refuses a cache for another store directory. */
async function cacheInfoProblems(deps: ScanDeps): Promise<Problem[]> {
  const key = NIX_CACHE_INFO_KEY;
  const body = await deps.store.get(key, deps.signal);
  if (body === undefined) {
    return [
      { kind: 'cache-info', key, detail: 'missing while the cache holds narinfos (Nix needs it first)' },
    ];
  }
  try {
    const info = parseNixCacheInfo(body.toString('utf8'), deps.storeDir);
    if (info.storeDir === deps.storeDir) return [];
    return [{ kind: 'cache-info', key, detail: `says StoreDir ${info.storeDir}, not ${deps.storeDir}` }];
  } catch (err) {
    return [
      {
        kind: 'cache-info',
        key,
        detail: `does not parse: ${err instanceof Error ? err.message : String(err)}`,
      },
    ];
  }
}
