// loft's one local SQLite file (`local_cache_path`): every table in it is opened, migrated and
// bound to its target here, and read through one module per table:
//   presence.ts    presence + the flags in `meta`   what the target holds (the presence cache)
//   queue.ts       queue + daemon_state             the daemon's persistent upload queue
//   prune-db.ts    narinfo_meta                     what each narinfo says, for pruning
//   prune-lock.ts  the `prune_lock` row of `meta`   one prune at a time on this host
// WAL lets `loft --enqueue` (another process) write while the daemon reads; the busy timeout waits
// for another process's write lock instead of failing. A damaged file heals itself (heal.ts).
import { existsSync, mkdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import Database from 'better-sqlite3';
import { oneLine } from '../errors.js';
import { createLogger, silentLogger, type Logger } from '../log.js';
import { isDatabaseCorrupt, moveAside, noteRebuild, ownSchemaPath, warnOnce } from './heal.js';
import { MIGRATIONS, migrate, schemaVersion } from './migrations.js';
import { openError } from './open-error.js';

export type StateDb = Database.Database;

export interface OpenStateOptions {
  /** SQLite busy timeout: how long a write waits for another process's lock (default 10 s). */
  busyTimeoutMs?: number;
  /** Where the warnings of a healed file go (default: a logger on stderr, as the CLI's). */
  logger?: Logger;
}

/**
 * Opens (creating it and its parent directories when missing) and migrates the file at `path`. A
 * damaged file is moved aside and replaced by a fresh one, and a newer loft's file is left alone
 * for one of this loft's own beside it (heal.ts says why); either way with one warning.
 */
export function openStateDb(path: string, opts: OpenStateOptions = {}): StateDb {
  try {
    return openAndMigrate(path, opts);
  } catch (err) {
    if (err instanceof NewerSchema) return openOwnSchema(path, err.version, opts);
    if (!isDatabaseCorrupt(err)) throw openError(path, err);
    return healStateDb(path, err, opts);
  }
}

/**
 * Moves the damaged file at `path` aside and opens a fresh one in its place, marked for a rebuild.
 * The daemon calls it too when SQLite reports corruption while it runs (after closing the file).
 */
export function healStateDb(path: string, cause: unknown, opts: OpenStateOptions = {}): StateDb {
  let aside: string;
  let db: StateDb;
  try {
    aside = moveAside(path);
    db = openAndMigrate(path, opts);
    noteRebuild(db, `damaged file moved to ${basename(aside)}`);
  } catch (err) {
    throw openError(path, err instanceof NewerSchema ? cause : err);
  }
  (opts.logger ?? createLogger()).warn(
    { path, movedTo: aside, reason: oneLine(cause) },
    'the local database was damaged: moved it aside and started a fresh one; presence is re-learned ' +
      'from the bucket and the store is scanned again',
  );
  return db;
}

/** A file of a newer loft: this loft works in its own file beside it (heal.ts). */
function openOwnSchema(path: string, version: number, opts: OpenStateOptions): StateDb {
  const own = ownSchemaPath(path, MIGRATIONS.length);
  const fresh = !existsSync(own);
  const db = openStateDb(own, opts);
  if (fresh) noteRebuild(db, `${path} has the schema ${version} of a newer loft`);
  warnOnce(
    opts.logger ?? createLogger(),
    path,
    { path, version, known: MIGRATIONS.length, using: own },
    'the local database was written by a newer loft: left it untouched and using a file of this ' +
      "loft's own beside it (delete the newer file once you will not go back to the newer loft)",
  );
  return db;
}

class NewerSchema extends Error {
  constructor(readonly version: number) {
    super(`schema version ${version}`);
  }
}

/**
 * The connections this module opened that may still be open (closed ones leave at the next
 * shrinkStateDbMemory). A daemon holds three or four of them on one file.
 */
const connections = new Set<StateDb>();

/**
 * Gives back what each open connection's page cache holds (`PRAGMA shrink_memory`, SQLite's
 * sqlite3_db_release_memory): up to 2 MiB each by default, filled by a scan of a large store and
 * kept while the daemon idles. Only unused pages go; the next query reads them again from the
 * file (through the OS's page cache). Returns how many connections were shrunk.
 */
export function shrinkStateDbMemory(): number {
  let shrunk = 0;
  for (const db of connections) {
    if (!db.open) {
      connections.delete(db);
      continue;
    }
    db.pragma('shrink_memory');
    shrunk++;
  }
  return shrunk;
}

function openAndMigrate(path: string, opts: OpenStateOptions): StateDb {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { timeout: opts.busyTimeoutMs ?? 10_000 });
  connections.add(db);
  try {
    db.pragma('journal_mode = WAL');
    // Enough under WAL: a row lost in a power cut only costs a re-check (see presence.ts).
    db.pragma('synchronous = NORMAL');
    const version = schemaVersion(db);
    if (version > MIGRATIONS.length) throw new NewerSchema(version);
    const { from, to } = migrate(db, path);
    if (from !== to) (opts.logger ?? silentLogger()).debug({ path, from, to }, 'migrated the local database');
    return db;
  } catch (err) {
    db.close();
    throw err;
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
