// Schema history of loft's local SQLite database. The version lives in PRAGMA user_version (0 for a
// new, empty file). Each migration runs once, in its own IMMEDIATE transaction that re-reads the
// version first, so two processes opening the same fresh file cannot both apply it. Later tables
// (a persistent upload queue, a narinfo/references cache for pruning) are new entries at the end of
// MIGRATIONS; an entry is never edited once released, because databases in the field already ran it.
import type { Database } from 'better-sqlite3';
import { ConfigError } from '../errors.js';

export interface Migration {
  /** 1, 2, 3... in order; the database's user_version after this migration ran. */
  readonly version: number;
  readonly description: string;
  up(db: Database): void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'presence of store paths in the target; metadata (target identity, flags)',
    up(db) {
      // WITHOUT ROWID: the table is its primary-key index, which is all that lookups by hash need.
      db.exec(`
        CREATE TABLE presence (
          hash_part   TEXT PRIMARY KEY NOT NULL,
          narinfo_key TEXT,
          nar_key     TEXT,
          nar_size    INTEGER,
          file_size   INTEGER,
          added_at    INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE meta (
          key   TEXT PRIMARY KEY NOT NULL,
          value TEXT NOT NULL
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 2,
    description: 'what pruning needs from each narinfo, so a prune does not re-read them all',
    up(db) {
      // One row per narinfo seen in the bucket, valid while the object's size and LastModified are
      // unchanged (src/state/prune-db.ts). `refs` holds the References' hash parts, self
      // excluded, space-separated; `nar_url` is NULL for a malformed narinfo that names no URL.
      db.exec(`
        CREATE TABLE narinfo_meta (
          hash_part     TEXT PRIMARY KEY NOT NULL,
          narinfo_size  INTEGER NOT NULL,
          last_modified INTEGER NOT NULL,
          nar_url       TEXT,
          refs          TEXT NOT NULL,
          deriver       TEXT,
          malformed     INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 3,
    description: "the daemon's persistent upload queue and its small state",
    up(db) {
      // One row per store path waiting for upload (`pending`) or given up on after repeated
      // failures (`parked`, kept with its last error for `loft --status` until requeued).
      // Times are milliseconds since the epoch.
      db.exec(`
        CREATE TABLE queue (
          path            TEXT PRIMARY KEY NOT NULL,
          state           TEXT NOT NULL CHECK (state IN ('pending', 'parked')),
          attempts        INTEGER NOT NULL DEFAULT 0,
          next_attempt_at INTEGER NOT NULL,
          last_error      TEXT,
          enqueued_at     INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX queue_due ON queue (state, next_attempt_at);
        CREATE TABLE daemon_state (
          key   TEXT PRIMARY KEY NOT NULL,
          value TEXT NOT NULL
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 4,
    description: 'who signed the narinfo each presence row stands for',
    up(db) {
      // The public key (`name:base64`) whose valid signature the narinfo is known to carry, '' for a
      // narinfo known to be unsigned by us, NULL when unknown (learned from a HEAD or a listing).
      // A run that signs re-signs present narinfos that are not known to carry its signature.
      db.exec(`ALTER TABLE presence ADD COLUMN signer TEXT`);
    },
  },
  {
    version: 5,
    description: 'unfinished multipart uploads and their acknowledged parts, to resume after a crash',
    up(db) {
      // One row per store path whose NAR is being sent in parts (src/state/multipart-state.ts):
      // the key it goes to, the compressor that produced it, the upload id once S3 gave one, and the
      // process doing it. Its parts are added as S3 acknowledges them; both go when the upload ends.
      db.exec(`
        CREATE TABLE multipart_upload (
          hash_part  TEXT PRIMARY KEY NOT NULL,
          target     TEXT NOT NULL,
          nar_hash   TEXT NOT NULL,
          producer   TEXT NOT NULL,
          nar_key    TEXT NOT NULL,
          upload_id  TEXT,
          part_size  INTEGER,
          owner_pid  INTEGER NOT NULL,
          started_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE multipart_part (
          hash_part   TEXT NOT NULL,
          part_number INTEGER NOT NULL,
          etag        TEXT NOT NULL,
          size        INTEGER NOT NULL,
          md5         TEXT NOT NULL,
          PRIMARY KEY (hash_part, part_number)
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 6,
    description: 'new builds ahead of the initial scan in the upload queue',
    up(db) {
      // 1 for a row the store scan queued (the backlog), 0 for one the watcher, the post-build hook
      // or `--enqueue` queued: takeDue serves 0 first (src/state/queue.ts). Rows already queued by
      // an older loft cannot be told apart and keep 0, the order they had. The index serves that
      // order without sorting the whole queue for every batch.
      db.exec(`
        ALTER TABLE queue ADD COLUMN backlog INTEGER NOT NULL DEFAULT 0 CHECK (backlog IN (0, 1));
        CREATE INDEX queue_lane_due ON queue (state, backlog, next_attempt_at);
      `);
    },
  },
];

export function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

export interface MigrationResult {
  from: number;
  to: number;
}

/** Brings `db` to the newest version in `migrations`. `path` only names the file in errors. */
export function migrate(
  db: Database,
  path: string,
  migrations: readonly Migration[] = MIGRATIONS,
): MigrationResult {
  checkOrder(migrations);
  const latest = migrations.length;
  // One read transaction: a consistent snapshot even while another process is migrating.
  const from = db.transaction(() => {
    const version = schemaVersion(db);
    refuseForeign(db, path, version, latest);
    return version;
  })();
  for (const migration of migrations) {
    db.transaction(() => {
      // Another process may have applied it between our read and this lock.
      if (schemaVersion(db) >= migration.version) return;
      migration.up(db);
      db.pragma(`user_version = ${migration.version}`);
    }).immediate();
  }
  return { from, to: schemaVersion(db) };
}

function checkOrder(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${i} has version ${m.version}, expected ${i + 1}`);
  });
}

/** A newer schema (a newer loft wrote it) or an unrelated SQLite database must not be touched. */
function refuseForeign(db: Database, path: string, version: number, latest: number): void {
  if (version > latest) {
    throw new ConfigError(
      `the loft cache database ${path} has schema version ${version}, newer than this loft knows (${latest}); ` +
        'run a newer loft, or delete the file (it is only a cache)',
    );
  }
  if (version === 0) {
    const objects = db.prepare(`SELECT count(*) FROM sqlite_master`).pluck().get() as number;
    if (objects > 0) {
      throw new ConfigError(
        `${path} is not a loft cache database: it is another SQLite database; ` +
          'delete it or set loft.local_cache_path',
      );
    }
  }
}
