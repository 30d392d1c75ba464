// Store paths named by hash part only (a garbage narinfo in a cache says nothing else about its
// path): one read of the store directory's names, no stat of any entry. Entries are only
// candidates: validity comes from Nix (queryPathInfos), and a directory Nix is still building or
// has half-deleted is answered as invalid there. Cheaper and steadier than `nix path-info --all`,
// which fails as a whole when a path is garbage-collected while it lists.
import { readdir } from 'node:fs/promises';
import { isValidStorePathName } from '../format/store-path.js';

export async function storePathsByHashPart(
  storeDir: string,
  hashParts: ReadonlySet<string>,
): Promise<string[]> {
  if (hashParts.size === 0) return [];
  let names: string[];
  try {
    names = await readdir(storeDir);
  } catch (err) {
    // No store on this machine: nothing here to mend from.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((n) => n[32] === '-' && hashParts.has(n.slice(0, 32)) && !n.endsWith('.lock'))
    .filter((n) => isValidStorePathName(n.slice(33)))
    .map((n) => `${storeDir}/${n}`);
}
