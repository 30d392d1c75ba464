// Commands that root runs against the daemon's local database (`--enqueue` from Nix's post-build
// hook, `--status` by an admin) act as the user owning that database, so root never creates a file
// there that the daemon's own user could not write.
import { statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';

/**
 * As root, switches this process to the user and group owning the database (or, before the daemon
 * first created it, its directory), when that owner is not root. A database file root created there
 * would be read-only to the daemon. (Opening an existing one as root would be harmless: SQLite gives
 * the -wal and -shm files it creates as root the database file's owner.) Any other user, and root's
 * own state, are left alone.
 */
export function actAsStateOwner(databasePath: string): void {
  if (process.getuid?.() !== 0 || !process.setuid || !process.setgid) return;
  const owner = ownerOf(databasePath) ?? ownerOf(dirname(databasePath));
  if (owner === undefined || owner.uid === 0) return;
  process.setgroups?.([]);
  process.setgid(owner.gid);
  process.setuid(owner.uid);
}

function ownerOf(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
