// The local record of which store paths are already in the target (bucket or directory), so a
// restart or a rescan does not ask the object store about every path again. A row is added only
// after the path's narinfo was stored (the narinfo is the commit point, as in Nix's binary cache
// store), so a row never claims more than the target holds at that moment; a lost row only costs
// a re-check. That is also why `synchronous = NORMAL` is enough under WAL.
import Database from 'better-sqlite3';
import { silentLogger, type Logger } from '../log.js';
import { bindTarget, openStateDb, TARGET_FLAGS } from './database.js';
import { openError } from './open-error.js';

/**
 * Two separate facts (the original Loft keeps one flag for both, so warming the cache from the
 * bucket silently skipped the initial scan of the store):
 * - initial_scan_complete: every valid path of the local store was seen once and queued.
 * - populated_from_bucket: the presence rows were filled from a listing of the whole target.
 */
export type PresenceFlag = (typeof TARGET_FLAGS)[number];

export interface PresenceInfo {
  narinfoKey?: string;
  narKey?: string;
  narSize?: number;
  fileSize?: number;
  /** The public key (`name:base64`) whose signature the narinfo carries; '' for unsigned. */
  signer?: string;
}

export interface PresenceEntry extends PresenceInfo {
  hashPart: string;
}

export interface PresenceCacheOptions {
  /** Identity of the bucket or directory, e.g. "s3://bucket@endpoint". Never put credentials here. */
  target: string;
  logger?: Logger;
}

/** Hashes per JSON array parameter: bounds one statement's memory whatever the caller passes. */
const BATCH = 10_000;

export class PresenceCache {
  private readonly statements: Statements;

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    readonly target: string,
  ) {
    this.statements = prepareStatements(db);
  }

  /**
   * Opens (creating it and its parent directories when missing) and migrates the database at
   * `path`. When it belonged to another target, its rows and flags are dropped: otherwise a switch
   * of bucket would skip uploads of everything the old bucket had.
   */
  static open(path: string, opts: PresenceCacheOptions): PresenceCache {
    const logger = opts.logger ?? silentLogger();
    const db = openStateDb(path, { logger });
    try {
      const previous = bindTarget(db, opts.target);
      if (previous !== undefined) {
        logger.warn(
          { path, previousTarget: previous, target: opts.target },
          'local cache belonged to another target; cleared it',
        );
      }
      return new PresenceCache(db, path, opts.target);
    } catch (err) {
      db.close();
      throw openError(path, err);
    }
  }

  has(hashPart: string): boolean {
    return this.statements.has.get(hashPart) !== undefined;
  }

  /** The hashes of `hashParts` without a row, in the given order (duplicates kept). */
  filterMissing(hashParts: readonly string[]): string[] {
    const present = new Set<string>();
    for (let i = 0; i < hashParts.length; i += BATCH) {
      const batch = JSON.stringify(hashParts.slice(i, i + BATCH));
      for (const h of this.statements.present.all(batch) as string[]) present.add(h);
    }
    return hashParts.filter((h) => !present.has(h));
  }

  /** Records a path as present. Call only after its narinfo is stored. */
  add(hashPart: string, info: PresenceInfo = {}): void {
    this.statements.add.run(row({ hashPart, ...info }));
  }

  /** Like add() for many paths, in one transaction. */
  addMany(entries: readonly PresenceEntry[]): void {
    const addedAt = Date.now();
    this.db.transaction(() => {
      for (const e of entries) this.statements.add.run(row(e, addedAt));
    })();
  }

  /**
   * Records paths the target was seen to hold (a HEAD or a listing) without knowing who signed
   * them. Rows already there keep what they know.
   */
  learn(hashParts: readonly string[]): void {
    this.db.transaction(() => {
      const addedAt = Date.now();
      for (const hashPart of hashParts) this.statements.learn.run(hashPart, addedAt);
    })();
  }

  /** The hashes of `hashParts` with a row not known to carry a signature by `signer`. */
  notSignedBy(hashParts: readonly string[], signer: string): string[] {
    const out: string[] = [];
    for (let i = 0; i < hashParts.length; i += BATCH) {
      const batch = JSON.stringify(hashParts.slice(i, i + BATCH));
      out.push(...(this.statements.notSignedBy.all(batch, signer) as string[]));
    }
    return out;
  }

  /**
   * The narinfos of these present paths were seen (or made) to carry a signature by `signer`. One
   * transaction: a commit per row cost 30 ms of a re-push's 400 paths.
   */
  setSignerMany(hashParts: readonly string[], signer: string): void {
    if (hashParts.length === 0) return;
    this.db.transaction(() => {
      for (const h of hashParts) this.statements.setSigner.run(signer, h);
    })();
  }

  remove(hashParts: readonly string[]): void {
    this.db.transaction(() => {
      for (let i = 0; i < hashParts.length; i += BATCH) {
        this.statements.remove.run(JSON.stringify(hashParts.slice(i, i + BATCH)));
      }
    })();
  }

  /**
   * Forgets every presence row (`--clear-cache`). populated_from_bucket goes too, since the rows no
   * longer mirror the target; initial_scan_complete stays: the store was scanned and its paths
   * uploaded, and each later upload re-checks the target itself before skipping anything.
   */
  clear(): void {
    this.db.transaction(() => {
      this.statements.clear.run();
      this.statements.deleteMeta.run('populated_from_bucket');
    })();
  }

  count(): number {
    return this.statements.count.get() as number;
  }

  getFlag(name: PresenceFlag): boolean {
    return this.statements.getMeta.get(name) === '1';
  }

  setFlag(name: PresenceFlag, value: boolean): void {
    if (value) this.statements.setMeta.run(name, '1');
    else this.statements.deleteMeta.run(name);
  }

  /** A small value of loft's own beside the rows (e.g. what the last prune-state listing saw). */
  getNote(name: string): string | undefined {
    return this.statements.getMeta.get(`note:${name}`) as string | undefined;
  }

  setNote(name: string, value: string): void {
    this.statements.setMeta.run(`note:${name}`, value);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

export interface PresenceStatus {
  /** Rows: paths known to be in the target. */
  paths: number;
  initialScanComplete: boolean;
}

/**
 * What `loft --status` shows of the presence table. It opens the file without binding a target:
 * a look at the status must never clear the rows, whatever target the config names now.
 */
export function readPresenceStatus(path: string): PresenceStatus {
  const db = openStateDb(path);
  try {
    const s = prepareStatements(db);
    return {
      paths: s.count.get() as number,
      initialScanComplete: s.getMeta.get('initial_scan_complete') === '1',
    };
  } finally {
    db.close();
  }
}

function prepareStatements(db: Database.Database) {
  return {
    has: db.prepare('SELECT 1 FROM presence WHERE hash_part = ?').pluck(),
    present: db
      .prepare('SELECT j.value FROM json_each(?) j JOIN presence p ON p.hash_part = j.value')
      .pluck(),
    add: db.prepare(
      `INSERT OR REPLACE INTO presence (hash_part, narinfo_key, nar_key, nar_size, file_size, signer, added_at)
       VALUES (@hashPart, @narinfoKey, @narKey, @narSize, @fileSize, @signer, @addedAt)`,
    ),
    learn: db.prepare('INSERT OR IGNORE INTO presence (hash_part, added_at) VALUES (?, ?)'),
    notSignedBy: db
      .prepare(
        `SELECT p.hash_part FROM json_each(?) j JOIN presence p ON p.hash_part = j.value
         WHERE p.signer IS NOT ?`,
      )
      .pluck(),
    setSigner: db.prepare('UPDATE presence SET signer = ? WHERE hash_part = ?'),
    remove: db.prepare('DELETE FROM presence WHERE hash_part IN (SELECT value FROM json_each(?))'),
    clear: db.prepare('DELETE FROM presence'),
    count: db.prepare('SELECT count(*) FROM presence').pluck(),
    getMeta: db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
    setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
    deleteMeta: db.prepare('DELETE FROM meta WHERE key = ?'),
  };
}
type Statements = ReturnType<typeof prepareStatements>;

function row(e: PresenceEntry, addedAt = Date.now()): Record<string, string | number | null> {
  return {
    hashPart: e.hashPart,
    narinfoKey: e.narinfoKey ?? null,
    narKey: e.narKey ?? null,
    narSize: e.narSize ?? null,
    fileSize: e.fileSize ?? null,
    signer: e.signer ?? null,
    addedAt,
  };
}
