// What an entry of the store directory says about a store path: the rules the watcher applies to
// each name it sees (see store-watcher.ts for what Nix 2.8 does in the store during a build), and
// the one-off scan for paths that landed while no loft was watching.
import { lstat } from 'node:fs/promises';
import { InvalidPathError } from '../errors.js';
import { isDerivation, parseStorePathBaseName } from '../format/store-path.js';

/** The store path an entry name stands for, or undefined when it is not a hint worth reporting. */
export function hintedPath(name: string, storeDir: string, uploadDerivations: boolean): string | undefined {
  const base = name.endsWith('.lock') ? name.slice(0, -'.lock'.length) : name;
  if (base.endsWith('.chroot') || base.endsWith('.check')) return undefined;
  if (!uploadDerivations && isDerivation(base)) return undefined;
  try {
    return parseStorePathBaseName(base, storeDir).path;
  } catch (err) {
    if (err instanceof InvalidPathError) return undefined;
    throw err;
  }
}

/** How many entries are stat'ed at once by pathsChangedSince: enough to hide latency, few fds. */
const STAT_BATCH = 256;

/**
 * The hinted paths among `names` whose ctime is at or after `since` (ms). Nix sets mtime to 1, but
 * the rename into the store and the canonicalisation of permissions update ctime, so ctime is when
 * the path landed. An entry gone meanwhile (the GC) is skipped.
 */
export async function pathsChangedSince(
  names: readonly string[],
  since: number,
  storeDir: string,
  uploadDerivations: boolean,
): Promise<string[]> {
  const candidates = names
    .map((n) => hintedPath(n, storeDir, uploadDerivations))
    .filter((p): p is string => p !== undefined);
  const found: string[] = [];
  for (let i = 0; i < candidates.length; i += STAT_BATCH) {
    const chunk = candidates.slice(i, i + STAT_BATCH);
    const stats = await Promise.all(chunk.map((p) => lstat(p).catch(() => undefined)));
    stats.forEach((st, j) => {
      if (st !== undefined && st.ctimeMs >= since) found.push(chunk[j]!);
    });
  }
  return found;
}
