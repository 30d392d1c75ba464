// One prune at a time on this host: a `prune_lock` row in the local database's `meta` table,
// holding the owner's pid, host and start time. Across hosts sharing a bucket, this file cannot
// help (each host has its own); that is the bucket's business. Every prune takes it through
// withPruneLock, the one place that decides what "busy" means and releases it.
import type Database from 'better-sqlite3';
import { PruneBusyError } from '../errors.js';

export interface PruneLockOwner {
  pid: number;
  host: string;
}

/** A lock older than this is from a crashed prune and is taken over. */
const STALE_LOCK_MS = 6 * 3_600_000;
const LOCK_KEY = 'prune_lock';

/**
 * Takes the prune lock; returns the current owner instead when another live prune holds it.
 * A lock left by a process of this host that no longer exists (killed with SIGKILL, a power
 * cut) is taken over at once; one from another host only once it is stale.
 */
export function tryPruneLock(
  db: Database.Database,
  owner: PruneLockOwner,
  nowMs = Date.now(),
  isAlive: (pid: number) => boolean = processExists,
): PruneLockOwner | undefined {
  return db
    .transaction(() => {
      const held = db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(LOCK_KEY) as
        string | undefined;
      if (held !== undefined) {
        const h = JSON.parse(held) as PruneLockOwner & { since: number };
        const dead = h.host === owner.host && h.pid !== owner.pid && !isAlive(h.pid);
        if (!dead && nowMs - h.since < STALE_LOCK_MS) return { pid: h.pid, host: h.host };
      }
      const value = JSON.stringify({ ...owner, since: nowMs });
      db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(LOCK_KEY, value);
      return undefined;
    })
    .immediate();
}

/** Runs `job` holding the prune lock; PruneBusyError (nothing run) while another prune holds it. */
export async function withPruneLock<T>(
  db: Database.Database,
  owner: PruneLockOwner,
  job: () => Promise<T>,
): Promise<T> {
  const holder = tryPruneLock(db, owner);
  if (holder) {
    throw new PruneBusyError(
      `another prune is running (pid ${holder.pid} on ${holder.host}); try again when it has finished`,
    );
  }
  try {
    return await job();
  } finally {
    releasePruneLock(db);
  }
}

export function releasePruneLock(db: Database.Database): void {
  db.prepare('DELETE FROM meta WHERE key = ?').run(LOCK_KEY);
}

/** Signal 0 checks that a process exists without touching it; EPERM means it exists as another user. */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
