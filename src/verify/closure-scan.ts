// `loft verify PATH...`: the closures of the given paths as the cache holds them, found without a
// listing (an HTTP cache without WebDAV has none): each narinfo is fetched, its NAR asked about
// with a HEAD, and its references followed, level by level. The objects found are then judged
// exactly as a whole-cache verify judges them (bucket-scan.ts); a reference the cache lacks shows
// as a missing reference of its referrer, a given path the cache lacks as `not-in-cache`.
import pLimit from 'p-limit';
import { narinfoKey } from '../format/bucket-layout.js';
import { parseNarInfo } from '../format/narinfo.js';
import { scanObjects, type ScanDeps, type ScanResult } from './bucket-scan.js';
import type { Problem } from './problems.js';

export async function scanClosures(deps: ScanDeps, hashParts: readonly string[]): Promise<ScanResult> {
  const sizes = new Map<string, number>();
  const absent: Problem[] = [];
  const seen = new Set<string>(hashParts);
  const requested = new Set(hashParts);
  const limit = pLimit(deps.concurrency ?? 16);
  let level = [...seen];
  while (level.length > 0) {
    const next: string[] = [];
    await Promise.all(
      level.map((h) =>
        limit(async () => {
          const key = narinfoKey(h);
          const body = await deps.store.get(key, deps.signal);
          if (body === undefined) {
            if (requested.has(h))
              absent.push({ kind: 'not-in-cache', key, hashPart: h, detail: 'not in the cache' });
            return;
          }
          sizes.set(key, body.length);
          for (const ref of await narAndReferences(deps, body, sizes)) {
            if (!seen.has(ref)) {
              seen.add(ref);
              next.push(ref);
            }
          }
        }),
      ),
    );
    level = next;
  }
  const result = await scanObjects(deps, sizes);
  result.problems.push(...absent);
  result.problems.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return result;
}

/** Records the NAR's size (when it exists) and returns the hash parts of the references. */
async function narAndReferences(deps: ScanDeps, body: Buffer, sizes: Map<string, number>): Promise<string[]> {
  let narinfo;
  try {
    narinfo = parseNarInfo(body.toString('utf8'));
  } catch {
    return []; // judged (unparsable) by scanObjects
  }
  if (!narinfo.url.includes('://')) {
    const nar = await deps.store.head(narinfo.url, deps.signal);
    if (nar !== undefined) sizes.set(narinfo.url, nar.size);
  }
  return narinfo.references.map((r) => r.slice(0, 32));
}
