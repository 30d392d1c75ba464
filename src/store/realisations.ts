// The realisations the local Nix recorded for an output path: which content-addressed derivation
// outputs it realises. Read from Nix's database, in whichever table this Nix keeps them
// (libstore ca-specific-schema.sql, created once `ca-derivations` is on):
//   Nix <= 2.34, Lix   Realisations(id, drvPath "sha256:<base16 hash modulo>", outputName,
//                        outputPath -> ValidPaths.id, signatures "k:s k:s")
//                      RealisationsRefs(referrer -> Realisations.id, realisationReference -> ...)
//   Nix >= 2.35        BuildTraceV3(drvPath "<drv base name>", outputName, outputPath "<full path>",
//                        signatures)
// One output may have several: a derivation and its resolved form (inputs replaced by their
// realised outputs) both realise it. `nix realisation info` cannot stand in on Nix 2.8 (it prints
// only the path), so a store whose database loft cannot read offers none.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { RealisationV1, RealisationV2 } from '../format/realisation.js';
import { baseNameOfParsed } from '../format/store-path.js';
import { nixDbLocation, type NixDbOptions } from './nix-db.js';

export interface LocalRealisations {
  v1: RealisationV1[];
  v2: RealisationV2[];
}

const V1_SQL = `SELECT r.id AS rowId, r.drvPath AS drvHash, r.outputName, r.signatures
  FROM Realisations r CROSS JOIN ValidPaths v ON v.id = r.outputPath WHERE v.path = ?`;
const V1_DEPS_SQL = `SELECT d.drvPath AS drvHash, d.outputName, v.path
  FROM RealisationsRefs x CROSS JOIN Realisations d ON d.id = x.realisationReference
  CROSS JOIN ValidPaths v ON v.id = d.outputPath WHERE x.referrer = ?`;
const V2_SQL = `SELECT drvPath, outputName, signatures FROM BuildTraceV3 WHERE outputPath = ?`;

interface V1Row {
  rowId: number;
  drvHash: string;
  outputName: string;
  signatures: string | null;
}

function signatures(s: string | null): string[] {
  return (s ?? '').split(' ').filter((x) => x !== '');
}

/**
 * The realisations of each of `outPaths` (full store paths); paths with none are absent from the
 * map. undefined when the database cannot be read (another store, no permission).
 */
export function realisationsFromNixDb(
  outPaths: readonly string[],
  opts: NixDbOptions = {},
): Map<string, LocalRealisations> | undefined {
  const dir = nixDbLocation(opts);
  if (dir === undefined) return undefined;
  let db: Database.Database | undefined;
  try {
    db = new Database(join(dir, 'db.sqlite'), { readonly: true, fileMustExist: true });
    return readAll(db, outPaths);
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}

function readAll(db: Database.Database, outPaths: readonly string[]): Map<string, LocalRealisations> {
  const tables = new Set(
    (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[]).filter(
      (t) => t === 'Realisations' || t === 'BuildTraceV3',
    ),
  );
  const out = new Map<string, LocalRealisations>();
  // A store without the tables (ca-derivations never enabled) has none for any path.
  if (tables.size === 0) return out;
  // Prepared once for the whole batch: a closure of thousands of paths asks once per path.
  const v1 = tables.has('Realisations') ? v1Reader(db) : () => [];
  const v2 = tables.has('BuildTraceV3') ? v2Reader(db) : () => [];
  db.transaction(() => {
    for (const path of outPaths) {
      const r = { v1: v1(path), v2: v2(path) };
      if (r.v1.length + r.v2.length > 0) out.set(path, r);
    }
  })();
  return out;
}

function v1Reader(db: Database.Database): (path: string) => RealisationV1[] {
  const realisations = db.prepare(V1_SQL);
  const dependencies = db.prepare(V1_DEPS_SQL);
  return (path) =>
    (realisations.all(path) as V1Row[]).map((row) => {
      const deps: Record<string, string> = {};
      const depRows = dependencies.all(row.rowId) as Array<{
        drvHash: string;
        outputName: string;
        path: string;
      }>;
      for (const d of depRows) deps[`${d.drvHash}!${d.outputName}`] = baseNameOfParsed(d.path);
      return {
        id: `${row.drvHash}!${row.outputName}`,
        outPath: baseNameOfParsed(path),
        signatures: signatures(row.signatures),
        dependentRealisations: deps,
      };
    });
}

function v2Reader(db: Database.Database): (path: string) => RealisationV2[] {
  const statement = db.prepare(V2_SQL);
  return (path) =>
    (
      statement.all(path) as Array<{
        drvPath: string;
        outputName: string;
        signatures: string | null;
      }>
    ).map((row) => ({
      drvPath: row.drvPath,
      outputName: row.outputName,
      outPath: baseNameOfParsed(path),
      signatures: signatures(row.signatures),
    }));
}
