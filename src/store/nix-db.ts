// Path info read straight from the local Nix store's database, for the closures `nix path-info
// --json --recursive` would print: the same rows that command reads (libstore local-store.cc,
// schema 10 since Nix 2.0, also Lix's), without starting Nix. Starting `nix` and printing JSON is
// most of what a fully cached re-run costs (docs/architecture.md, "where the time goes").
//
//   ValidPaths(id, path, hash "sha256:<base16>", registrationTime, deriver, narSize, ultimate,
//              sigs "key:sig key:sig", ca)
//   Refs(referrer -> ValidPaths.id, reference -> ValidPaths.id)   the self-reference included
//
// Anything unusual answers "unknown" (undefined) and the caller asks Nix instead: another store
// selected through the environment, an unknown schema, a database this user cannot open (a
// multi-user install's WAL database is often unreadable without write access to its directory), a
// requested path Nix does not know (Nix's own error names it), a row this code does not understand.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseHash } from '../format/hash.js';
import type { PathInfo, PathInfoResult } from '../format/path-info.js';
import { DEFAULT_STORE_DIR, parseStorePath, type StorePath } from '../format/store-path.js';

/** The only schema this reader knows (Nix 2.0 to at least 2.35, Lix). */
const KNOWN_SCHEMA = '10';

/** NIX_REMOTE values that all mean "the local store at the default location". */
const LOCAL_STORES = new Set(['', 'auto', 'daemon', 'local']);

export interface NixDbOptions {
  storeDir?: string;
  env?: NodeJS.ProcessEnv;
}

interface PathRow {
  id: number;
  path: string;
  hash: string;
  registrationTime: number | null;
  deriver: string | null;
  narSize: number | null;
  ultimate: number | null;
  sigs: string | null;
  ca: string | null;
  /** Full paths of the references, space-separated; null when there are none. */
  refs: string | null;
}

// The closure of the requested paths through Refs (`UNION`, not ALL: each path once), then each
// member with its references in one column (store paths hold no spaces). CROSS JOIN keeps SQLite
// from scanning the whole Refs table, which on a large store costs far more than the closure.
const CLOSURE_SQL = `WITH RECURSIVE closure(id) AS (
    SELECT id FROM ValidPaths WHERE path IN (SELECT value FROM json_each(?))
    UNION SELECT r.reference FROM closure c CROSS JOIN Refs r ON r.referrer = c.id)
  SELECT v.id, v.path, v.hash, v.registrationTime, v.deriver, v.narSize, v.ultimate, v.sigs, v.ca,
    (SELECT group_concat(p.path, ' ') FROM Refs r CROSS JOIN ValidPaths p ON p.id = r.reference
      WHERE r.referrer = v.id) AS refs
  FROM closure c CROSS JOIN ValidPaths v ON v.id = c.id`;
const FOUND_SQL = `SELECT count(*) FROM ValidPaths WHERE path IN (SELECT value FROM json_each(?))`;

/** Where this process's Nix keeps its database, or undefined when the environment picks another store. */
export function nixDbLocation(opts: NixDbOptions = {}): string | undefined {
  const env = opts.env ?? process.env;
  const storeDir = (opts.storeDir ?? DEFAULT_STORE_DIR).replace(/\/+$/, '');
  if (!LOCAL_STORES.has(env['NIX_REMOTE'] ?? '')) return undefined;
  if ((env['NIX_STORE_DIR'] ?? DEFAULT_STORE_DIR).replace(/\/+$/, '') !== storeDir) return undefined;
  return join(env['NIX_STATE_DIR'] ?? '/nix/var/nix', 'db');
}

/**
 * The path infos of `paths` and their closures, as `nix path-info --json --recursive` would give
 * them; undefined when the database cannot answer for all of them (see the top of this file).
 */
export function closureFromNixDb(
  paths: readonly string[],
  opts: NixDbOptions = {},
): PathInfoResult[] | undefined {
  const dir = nixDbLocation(opts);
  if (dir === undefined || paths.length === 0) return undefined;
  let db: Database.Database | undefined;
  try {
    if (readFileSync(join(dir, 'schema'), 'utf8').trim() !== KNOWN_SCHEMA) return undefined;
    db = new Database(join(dir, 'db.sqlite'), { readonly: true, fileMustExist: true });
    return readClosure(db, [...new Set(paths)], opts.storeDir ?? DEFAULT_STORE_DIR);
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}

function readClosure(db: Database.Database, paths: string[], storeDir: string): PathInfoResult[] | undefined {
  const wanted = JSON.stringify(paths);
  // One read transaction: Nix may register or delete paths meanwhile, and both answers must
  // describe one state of the store.
  const read = db.transaction(() => {
    const found = db.prepare(FOUND_SQL).pluck().get(wanted) as number;
    if (found !== paths.length) return undefined;
    return db.prepare(CLOSURE_SQL).all(wanted) as PathRow[];
  });
  const rows = read();
  if (rows === undefined) return undefined;
  // Each member's path is parsed here, once (the PathInfo carries its hash part on); a reference is
  // checked by being a member, since the closure holds every reference of every member.
  const parsed = new Map<string, StorePath>();
  for (const row of rows) {
    const p = parsedOrUndefined(row.path, storeDir);
    if (p === undefined) return undefined;
    parsed.set(row.path, p);
  }
  const out: PathInfoResult[] = [];
  for (const row of rows) {
    const info = toPathInfo(row, parsed.get(row.path)!, storeDir);
    if (info === undefined || !info.references.every((r) => parsed.has(r))) return undefined;
    out.push({ ok: true, info });
  }
  return out;
}

/** A row this code does not understand answers "unknown", like any other (see the top). */
function parsedOrUndefined(path: string, storeDir: string): StorePath | undefined {
  try {
    return parseStorePath(path, storeDir);
  } catch {
    return undefined;
  }
}

/** One row as Nix 2.8's path-info JSON shows it (fields Nix leaves out when 0, null or empty). */
function toPathInfo(row: PathRow, parsed: StorePath, storeDir: string): PathInfo | undefined {
  if (row.narSize === null || row.narSize < 0) return undefined;
  const info: PathInfo = {
    path: parsed.path,
    hashPart: parsed.hashPart,
    narHash: parseHash(row.hash),
    narSize: row.narSize,
    references: row.refs === null ? [] : row.refs.split(' ').sort(),
    signatures: (row.sigs ?? '').split(' ').filter((s) => s !== ''),
  };
  if (row.deriver !== null && row.deriver !== '') {
    const deriver = parsedOrUndefined(row.deriver, storeDir);
    if (deriver === undefined) return undefined;
    info.deriver = deriver.path;
  }
  if (row.ca !== null && row.ca !== '') info.ca = row.ca;
  if (row.registrationTime !== null && row.registrationTime !== 0)
    info.registrationTime = row.registrationTime;
  if (row.ultimate !== null && row.ultimate !== 0) info.ultimate = true;
  return info;
}
