// Asks Nix what it knows about store paths: `nix path-info --json [--recursive] -- PATHS`, read
// with the one parser for every Nix version's JSON shape. One bad path never fails the others.
//
// What Nix 2.8 does with a bad argument (observed on this project's test machine):
// (a) a well-formed store path that is not valid (absent, or a directory Nix never registered):
//     without --recursive it exits 0 and prints {"path":..., "valid": false} for it, next to the
//     other paths' entries; WITH --recursive it exits 1 with "error: path '...' is not valid" and
//     prints nothing, failing every other path of the call.
// (b) a path outside the store, or a malformed one (/nix/store/abc): Nix reads it as an installable
//     (a flake reference or a file), exits 1 ("getting status of ...", "could not find a flake.nix")
//     and prints nothing. A file INSIDE a store path is silently answered with that store path's info.
// (c) valid and invalid store paths mixed: as (a); with any argument of kind (b), the whole call fails.
// So: arguments that do not parse as store paths are answered here without asking Nix (the caller
// resolves `./result` and the like first); a failed --recursive call is followed by a plain call
// that names the invalid paths, and the rest are asked again; anything still failing is bisected
// until the failing path stands alone and gets the error.
import { InvalidPathError, NixError } from '../errors.js';
import { normalizePathInfoJson, type PathInfoResult } from '../format/path-info.js';
import { DEFAULT_STORE_DIR, parseStorePath } from '../format/store-path.js';
import { runNix } from './nix-cli.js';
import { closureFromNixDb } from './nix-db.js';

export interface QueryPathInfoOptions {
  /** Include the closure (every path the given ones reference, transitively). */
  recursive: boolean;
  storeDir?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** With `recursive`: read the local store's database first, asking Nix only when it cannot
   * answer (src/store/nix-db.ts). */
  nixDb?: boolean;
}

/** Paths per call: keeps argv far below the kernel's limit (about 2 MiB) for any store dir. */
const PATHS_PER_CALL = 2000;

/**
 * One result per distinct path: the given paths and, with `recursive`, their closures. Errors are
 * per path (`ok: false`); a missing or broken Nix rejects the whole call with NixError.
 */
export async function queryPathInfos(paths: string[], opts: QueryPathInfoOptions): Promise<PathInfoResult[]> {
  const storeDir = opts.storeDir ?? DEFAULT_STORE_DIR;
  if (opts.recursive && opts.nixDb) {
    const fromDb = closureFromNixDb(paths, { storeDir, ...(opts.env ? { env: opts.env } : {}) });
    if (fromDb !== undefined) return fromDb;
  }
  const results = new Map<string, PathInfoResult>();
  const wellFormed = new Set<string>();
  for (const p of paths) {
    try {
      wellFormed.add(parseStorePath(p, storeDir).path);
    } catch (err) {
      if (!(err instanceof InvalidPathError)) throw err;
      results.set(p, { ok: false, path: p, error: err });
    }
  }
  const all = [...wellFormed];
  for (let i = 0; i < all.length; i += PATHS_PER_CALL) {
    const chunk = all.slice(i, i + PATHS_PER_CALL);
    const found = opts.recursive
      ? await queryRecursive(chunk, opts, storeDir)
      : await queryIsolating(chunk, false, opts, storeDir);
    for (const r of found) {
      const key = r.ok ? r.info.path : r.path;
      // Closures of different chunks overlap; a success wins over an error for the same path.
      if (!results.has(key) || r.ok) results.set(key, r);
    }
  }
  return [...results.values()];
}

async function callNix(
  paths: string[],
  recursive: boolean,
  opts: QueryPathInfoOptions,
  storeDir: string,
): Promise<PathInfoResult[]> {
  const args = ['path-info', '--json', ...(recursive ? ['--recursive'] : [])];
  const { stdout } = await runNix(args, {
    operands: paths,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return normalizePathInfoJson(JSON.parse(stdout) as unknown, storeDir);
}

/** Nix itself is missing or the call was aborted: retrying path by path cannot help. */
function isGlobalFailure(err: unknown): boolean {
  if (!(err instanceof NixError)) return true;
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  return code === 'ENOENT' || code === 'ABORT_ERR';
}

async function queryRecursive(
  paths: string[],
  opts: QueryPathInfoOptions,
  storeDir: string,
): Promise<PathInfoResult[]> {
  try {
    return await callNix(paths, true, opts, storeDir);
  } catch (err) {
    if (isGlobalFailure(err) || paths.length === 1) return failedAlone(paths, err);
  }
  // Usually an invalid path among them (see (a) above): a plain call names it without failing.
  const plain = await queryIsolating(paths, false, opts, storeDir);
  const invalid = plain.filter((r) => !r.ok);
  const valid = plain.flatMap((r) => (r.ok ? [r.info.path] : []));
  if (valid.length === 0) return invalid;
  return [...invalid, ...(await queryIsolating(valid, true, opts, storeDir))];
}

/** Asks Nix; on failure splits the paths in halves until the failing ones stand alone. */
async function queryIsolating(
  paths: string[],
  recursive: boolean,
  opts: QueryPathInfoOptions,
  storeDir: string,
): Promise<PathInfoResult[]> {
  try {
    return await callNix(paths, recursive, opts, storeDir);
  } catch (err) {
    if (isGlobalFailure(err) || paths.length === 1) return failedAlone(paths, err);
  }
  const half = Math.ceil(paths.length / 2);
  return [
    ...(await queryIsolating(paths.slice(0, half), recursive, opts, storeDir)),
    ...(await queryIsolating(paths.slice(half), recursive, opts, storeDir)),
  ];
}

/** A call for a single path failed: that path gets the error (or everything fails if Nix is gone). */
function failedAlone(paths: string[], err: unknown): PathInfoResult[] {
  if (isGlobalFailure(err) || paths.length !== 1) throw err;
  const path = paths[0]!;
  const reason = err instanceof Error ? err.message : String(err);
  return [
    { ok: false, path, error: new InvalidPathError(path, `cannot get path info for ${path}: ${reason}`) },
  ];
}
