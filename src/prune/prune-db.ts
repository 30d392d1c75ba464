// Pruning's part of loft's local SQLite database (the presence cache's file, table narinfo_meta from
// migration v2, plus rows in `meta`): what each narinfo says that pruning needs, so a prune reads
// only narinfos it has not seen in this form, and a lock so two prunes never run at once.
// A row is valid while the narinfo object's size and LastModified are those recorded: a narinfo
// rewritten in place (a re-upload) gets a new LastModified and is read again.
import Database from 'better-sqlite3';
import { ConfigError } from '../errors.js';
import { migrate } from '../cache/migrations.js';

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

export interface PruneLockOwner {
  pid: number;
  host: string;
}

/** A lock older than this is from a crashed prune and is taken over. */
const STALE_LOCK_MS = 6 * 3_600_000;
const TARGET_KEY = 'narinfo_meta_target';
const LOCK_KEY = 'prune_lock';

export class PruneDb {
  private constructor(private readonly db: Database.Database) {}

  /**
   * Opens `path` (the presence cache's file, already created and migrated by PresenceCache.open).
   * Rows recorded for another target are dropped, as PresenceCache does with its own.
   */
  static open(path: string, target: string): PruneDb {
    let db: Database.Database;
    try {
      db = new Database(path, { timeout: 10_000 });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      migrate(db, path);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new ConfigError(`cannot open the loft cache database ${path} for pruning: ${reason}`, {
        cause: err,
      });
    }
    const store = new PruneDb(db);
    store.bindTarget(target);
    return store;
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

  /**
   * Takes the prune lock; returns the current owner instead when another live prune holds it.
   * A lock left by a process of this host that no longer exists (killed with SIGKILL, a power
   * cut) is taken over at once; one from another host only once it is stale.
   */
  tryLock(owner: PruneLockOwner, nowMs = Date.now(), isAlive = processExists): PruneLockOwner | undefined {
    return this.db
      .transaction(() => {
        const held = this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(LOCK_KEY) as
          string | undefined;
        if (held !== undefined) {
          const h = JSON.parse(held) as PruneLockOwner & { since: number };
          const dead = h.host === owner.host && h.pid !== owner.pid && !isAlive(h.pid);
          if (!dead && nowMs - h.since < STALE_LOCK_MS) return { pid: h.pid, host: h.host };
        }
        const value = JSON.stringify({ ...owner, since: nowMs });
        this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(LOCK_KEY, value);
        return undefined;
      })
      .immediate();
  }

  unlock(): void {
    this.db.prepare('DELETE FROM meta WHERE key = ?').run(LOCK_KEY);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private bindTarget(target: string): void {
    this.db
      .transaction(() => {
        const previous = this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(TARGET_KEY);
        if (previous === target) return;
        this.db.exec('DELETE FROM narinfo_meta');
        this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(TARGET_KEY, target);
      })
      .immediate();
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

/** Signal 0 checks that a process exists without touching it; EPERM means it exists as another user. */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
