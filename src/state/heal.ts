// A damaged local database heals itself. Everything in `local_cache_path` can be rebuilt: presence
// from the bucket (one listing), the queue from a scan of the store, narinfo_meta by the next
// prune, the prune lock is this host's own. So a file SQLite calls corrupt (SQLITE_CORRUPT,
// SQLITE_NOTADB: garbage, a truncated copy, a disk that lost a page) is not a reason to stop: the
// service would stay down until someone logs in (the NixOS unit does not restart on exit 3). It is
// moved aside with its WAL, named with the time (kept for whoever wants to look at it), a fresh
// file takes its place with a note that asks the daemon to re-learn presence from the bucket and
// scan the store, and one warning says so. Nothing is uploaded twice: an upload first asks the
// bucket about every path the fresh file does not know.
//
// A file written by a NEWER loft (a higher schema version) is not damaged, and is not moved: a
// downgrade is often temporary (a rollback of a NixOS generation), and the newer loft should find
// its queue and presence where it left them. This loft works in a file of its own beside it,
// `<path>.schema-<N>` (N: the newest schema this loft knows), rebuilt the same way; the newer file
// is left untouched, and may be deleted by hand once the downgrade is for good.
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Database } from 'better-sqlite3';
import type { Logger } from '../log.js';

/** The `meta` row that asks the daemon to re-learn presence and scan the store (read via getNote). */
export const REBUILD_NOTE_KEY = 'note:rebuild';
/** Damaged copies kept per database file; older ones are deleted, so a failing disk cannot fill up. */
export const DAMAGED_COPIES_KEPT = 3;

/** SQLite's codes (and extended codes) for a file whose contents are not a sound database. */
export function isDatabaseCorrupt(err: unknown): boolean {
  let current = err;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')))
      return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** SQLite's own check of every page (`PRAGMA quick_check`): false when it finds damage. */
export function isSound(db: Database): boolean {
  try {
    return db.pragma('quick_check', { simple: true }) === 'ok';
  } catch (err) {
    if (isDatabaseCorrupt(err)) return false;
    throw err;
  }
}

/** `cache.db` -> `cache.db.damaged-20261206T114700Z` (and `-2`, `-3` within the same second). */
export function damagedName(path: string, now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  let candidate = `${path}.damaged-${stamp}`;
  for (let n = 2; existsSync(candidate); n++) candidate = `${path}.damaged-${stamp}-${n}`;
  return candidate;
}

/**
 * Moves the file at `path` (with its `-wal` and `-shm`: a WAL left behind would be replayed into
 * the fresh file) to a name with the time, and deletes damaged copies beyond DAMAGED_COPIES_KEPT.
 * @returns where the file went
 */
export function moveAside(path: string, now = new Date()): string {
  const aside = damagedName(path, now);
  renameSync(path, aside);
  for (const suffix of ['-wal', '-shm']) {
    if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
  }
  pruneDamagedCopies(path);
  return aside;
}

function pruneDamagedCopies(path: string): void {
  const prefix = `${basename(path)}.damaged-`;
  const copies = readdirSync(dirname(path))
    .filter((n) => n.startsWith(prefix) && !n.endsWith('-wal') && !n.endsWith('-shm'))
    .sort();
  for (const old of copies.slice(0, Math.max(0, copies.length - DAMAGED_COPIES_KEPT))) {
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(dirname(path), old + suffix), { force: true });
  }
}

/** Marks a fresh file as standing in for a lost one (read by the daemon, src/daemon/daemon.ts). */
export function noteRebuild(db: Database, reason: string): void {
  db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(REBUILD_NOTE_KEY, reason);
}

/** The file this loft uses when `path` holds a newer loft's schema. */
export function ownSchemaPath(path: string, latest: number): string {
  return `${path}.schema-${latest}`;
}

/** Warnings already given in this process, so three openers of one file say it once. */
const warned = new Set<string>();

export function warnOnce(logger: Logger, key: string, fields: Record<string, unknown>, msg: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  logger.warn(fields, msg);
}
