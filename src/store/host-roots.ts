// The store paths this host runs, for the roots it publishes to the cache (a prune on any host
// keeps their closures: src/prune/sweep-pass.ts). Each configured entry is a symlink into the store
// (`/run/current-system`, a profile), a store path, or a directory of such symlinks
// (`/nix/var/nix/gcroots/auto`, one level). Entries this host does not have, or cannot read, are
// skipped: a machine without /run/current-system simply publishes less.
import { lstat, readdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { parseStorePath } from '../format/store-path.js';

/** Hash parts of the store paths the entries resolve to, sorted, without duplicates. */
export async function resolveHostRoots(entries: readonly string[], storeDir: string): Promise<string[]> {
  const out = new Set<string>();
  for (const entry of entries) {
    for (const candidate of await expand(entry, storeDir)) {
      const hash = await storeHashOf(candidate, storeDir);
      if (hash !== undefined) out.add(hash);
    }
  }
  return [...out].sort();
}

/** A plain directory outside the store stands for the symlinks in it; anything else for itself. */
async function expand(entry: string, storeDir: string): Promise<string[]> {
  try {
    const st = await lstat(entry);
    if (!st.isDirectory() || entry.startsWith(`${storeDir}/`)) return [entry];
    const dirents = await readdir(entry, { withFileTypes: true });
    return dirents.filter((d) => d.isSymbolicLink()).map((d) => join(entry, d.name));
  } catch {
    return [];
  }
}

async function storeHashOf(p: string, storeDir: string): Promise<string | undefined> {
  try {
    const real = await realpath(p);
    const top = real
      .split('/')
      .slice(0, storeDir.split('/').length + 1)
      .join('/');
    return parseStorePath(top, storeDir).hashPart;
  } catch {
    return undefined; // missing, unreadable, or outside the store
  }
}
