// loft's one local SQLite file (`local_cache_path`): every table in it is opened, migrated and
// bound to its target here, and read through one module per table:
//   presence.ts    presence + the flags in `meta`   what the target holds (the presence cache)
//   queue.ts       queue + daemon_state             the daemon's persistent upload queue
//   prune-db.ts    narinfo_meta                     what each narinfo says, for pruning
//   prune-lock.ts  the `prune_lock` row of `meta`   one prune at a time on this host
// WAL lets `loft --enqueue` (another process) write while the daemon reads; the busy timeout waits
// for another process's write lock instead of failing.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { silentLogger, type Logger } from '../log.js';
import { migrate } from './migrations.js';
import { openError } from './open-error.js';

export type StateDb = Database.Database;

export interface OpenStateOptions {
  /** SQLite busy timeout: how long a write waits for another process's lock (default 10 s). */
  busyTimeoutMs?: number;
  logger?: Logger;
}

/** Opens (creating it and its parent directories when missing) and migrates the file at `path`. */
export function openStateDb(path: string, opts: OpenStateOptions = {}): StateDb {
  let db: StateDb;
  try {
    mkdirSync(dirname(path), { recursive: true });
    db = new Database(path, { timeout: opts.busyTimeoutMs ?? 10_000 });
  } catch (err) {
    throw openError(path, err);
  }
  try {
    db.pragma('journal_mode = WAL');
    // Enough under WAL: a row lost in a power cut only costs a re-check (see presence.ts).
    db.pragma('synchronous = NORMAL');
    const { from, to } = migrate(db, path);
    if (from !== to) (opts.logger ?? silentLogger()).debug({ path, from, to }, 'migrated the local database');
    return db;
  } catch (err) {
    db.close();
    throw openError(path, err);
  }
}

/** Flags in `meta` that describe the target's contents, and go when the target changes. */
export const TARGET_FLAGS = ['initial_scan_complete', 'populated_from_bucket'] as const;

/**
 * Ties the file's target-bound tables (presence and its flags, narinfo_meta) to `target`. When the
 * file last served another bucket or directory, those rows are dropped: otherwise a switch of
 * bucket would skip uploads of everything the old bucket had, and a prune would trust what another
 * bucket's narinfos said. The queue is not bound: it holds store paths, not the target's contents.
 * @returns the previous target when rows were dropped
 */
export function bindTarget(db: StateDb, target: string): string | undefined {
  return db
    .transaction(() => {
      const get = db.prepare('SELECT value FROM meta WHERE key = ?').pluck();
      const previous = get.get('target') as string | undefined;
      if (previous === target) return undefined;
      if (previous !== undefined) {
        db.exec('DELETE FROM presence');
        db.exec('DELETE FROM narinfo_meta');
        const drop = db.prepare('DELETE FROM meta WHERE key = ?');
        for (const flag of TARGET_FLAGS) drop.run(flag);
      }
      db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run('target', target);
      return previous;
    })
    .immediate();
}
