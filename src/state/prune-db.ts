// Pruning's part of loft's local SQLite database (database.ts; table narinfo_meta from migration
// v2): what each narinfo says that pruning needs, so a prune reads only narinfos it has not seen in
// this form; and, through prune-lock.ts, the lock that keeps two prunes apart.
// A row is valid while the narinfo object's size and LastModified are those recorded: a narinfo
// rewritten in place (a re-upload) gets a new LastModified and is read again.
import type Database from 'better-sqlite3';
import { bindTarget, openStateDb } from './database.js';
import { openError } from './open-error.js';
import { releasePruneLock, tryPruneLock, withPruneLock, type PruneLockOwner } from './prune-lock.js';

export type { PruneLockOwner } from './prune-lock.js';

export interface NarinfoMeta {
  hashPart: string;
  narinfoSize: number;
  /** The object's LastModified, ms since the epoch. */
  lastModified: number;
  /** The narinfo's URL; undefined when a malformed narinfo names none. */
  narUrl?: string;
  /** Hash parts of the References, self excluded. */
  references: string[];
  /** Base name of the deriver, when the narinfo names one. */
  deriver?: string;
  malformed: boolean;
}

export class PruneDb {
  private constructor(private readonly db: Database.Database) {}

  /** Opens the local database at `path`; rows recorded for another target are dropped (database.ts). */
  static open(path: string, target: string): PruneDb {
    const db = openStateDb(path);
    try {
      bindTarget(db, target);
    } catch (err) {
      db.close();
      throw openError(path, err);
    }
    return new PruneDb(db);
  }

  all(): Map<string, NarinfoMeta> {
    const rows = this.db.prepare('SELECT * FROM narinfo_meta').all() as Row[];
    return new Map(rows.map((r) => [r.hash_part, fromRow(r)]));
  }

  putMany(entries: readonly NarinfoMeta[]): void {
    const put = this.db.prepare(
      `INSERT OR REPLACE INTO narinfo_meta
         (hash_part, narinfo_size, last_modified, nar_url, refs, deriver, malformed)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      for (const m of entries) {
        put.run(
          m.hashPart,
          m.narinfoSize,
          m.lastModified,
          m.narUrl ?? null,
          m.references.join(' '),
          m.deriver ?? null,
          m.malformed ? 1 : 0,
        );
      }
    })();
  }

  remove(hashParts: readonly string[]): void {
    const del = this.db.prepare(
      'DELETE FROM narinfo_meta WHERE hash_part IN (SELECT value FROM json_each(?))',
    );
    this.db.transaction(() => {
      for (let i = 0; i < hashParts.length; i += 10_000)
        del.run(JSON.stringify(hashParts.slice(i, i + 10_000)));
    })();
  }

  /** See tryPruneLock (prune-lock.ts). */
  tryLock(
    owner: PruneLockOwner,
    nowMs = Date.now(),
    isAlive?: (pid: number) => boolean,
  ): PruneLockOwner | undefined {
    return tryPruneLock(this.db, owner, nowMs, isAlive);
  }

  unlock(): void {
    releasePruneLock(this.db);
  }

  /** See withPruneLock (prune-lock.ts). */
  withLock<T>(owner: PruneLockOwner, job: () => Promise<T>): Promise<T> {
    return withPruneLock(this.db, owner, job);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

interface Row {
  hash_part: string;
  narinfo_size: number;
  last_modified: number;
  nar_url: string | null;
  refs: string;
  deriver: string | null;
  malformed: number;
}

function fromRow(r: Row): NarinfoMeta {
  const m: NarinfoMeta = {
    hashPart: r.hash_part,
    narinfoSize: r.narinfo_size,
    lastModified: r.last_modified,
    references: r.refs === '' ? [] : r.refs.split(' '),
    malformed: r.malformed !== 0,
  };
  if (r.nar_url !== null) m.narUrl = r.nar_url;
  if (r.deriver !== null) m.deriver = r.deriver;
  return m;
}
