// `nix path-info --json` in every shape Nix has printed, folded into one PathInfo per path:
//   Nix 2.8..2.18, Lix  [{"path":"/nix/store/..","narHash":"sha256-<b64>","narSize":N,
//                         "references":[full paths],"deriver"?,"registrationTime"?,"ultimate"?,
//                         "signatures"?:["key:b64"],"ca"?:"fixed:r:sha256:.."}, ...]
//                       an invalid path is {"path":"..","valid":false}
//   Nix 2.19+           {"/nix/store/..": {same fields without "path"} | null (invalid path)}
//   Nix 2.33+ JSON v2/3 values carry "version", "storeDir", narHash as {"algorithm","format","hash"},
//                       references/deriver as base names, ca as {"method","hash"}, and (v3)
//                       signatures as {"keyName","sig"}. Keys may be full paths or base names.
// Malformed JSON throws FormatError for the whole document; an invalid path only affects itself.
import { FormatError, InvalidPathError } from '../errors.js';
import { formatHashNix32, parseHash, type Hash } from './hash.js';
import { DEFAULT_STORE_DIR, parseStorePath, parseStorePathBaseName, type StorePath } from './store-path.js';

/**
 * One valid store path as Nix registered it. `path`, `references` and `deriver` were parsed and
 * checked once, where the PathInfo was made (here, or src/store/nix-db.ts): later layers read
 * `hashPart` and take base names with baseNameOfParsed instead of parsing them again.
 */
export interface PathInfo {
  path: string;
  /** The 32 characters of `path` that name its narinfo (`<hashPart>.narinfo`). */
  hashPart: string;
  narHash: Hash;
  narSize: number;
  /** Full store paths, sorted, the path itself included when it refers to itself. */
  references: string[];
  /** Full store path of the .drv. */
  deriver?: string;
  /** `keyName:base64(signature)` */
  signatures: string[];
  /** Narinfo form: `fixed:r:sha256:<nix32>`, `fixed:sha256:..`, `text:sha256:..`. */
  ca?: string;
  registrationTime?: number;
  ultimate?: boolean;
}

export type PathInfoResult =
  { ok: true; info: PathInfo } | { ok: false; path: string; error: InvalidPathError };

type JsonObject = Record<string, unknown>;

export function normalizePathInfoJson(json: unknown, storeDir: string = DEFAULT_STORE_DIR): PathInfoResult[] {
  if (Array.isArray(json)) {
    return json.map((entry, i) => {
      const o = asObject(entry, `entry ${i}`);
      if (typeof o['path'] !== 'string')
        throw new FormatError(`path-info JSON: entry ${i} has no "path" string`);
      return entryResult(o['path'], o, storeDir);
    });
  }
  const top = asObject(json, 'the document');
  return Object.entries(top).map(([key, value]) => {
    if (value === null) return invalid(toStorePath(key, storeDir, 'key').path);
    return entryResult(key, asObject(value, `the value of ${key}`), storeDir);
  });
}

function entryResult(pathText: string, o: JsonObject, storeDir: string): PathInfoResult {
  const parsed = toStorePath(pathText, storeDir, 'path');
  const path = parsed.path;
  if (o['valid'] === false) return invalid(path);
  if (
    typeof o['storeDir'] === 'string' &&
    o['storeDir'].replace(/\/+$/, '') !== storeDir.replace(/\/+$/, '')
  ) {
    throw new FormatError(`path-info JSON: ${path} is in store ${o['storeDir']}, expected ${storeDir}`);
  }
  return { ok: true, info: parseInfo(parsed, o, storeDir) };
}

function invalid(path: string): PathInfoResult {
  const error = new InvalidPathError(path, `${path} is not a valid path in the Nix store (built or added?)`);
  return { ok: false, path, error };
}

function parseInfo(parsed: StorePath, o: JsonObject, storeDir: string): PathInfo {
  const { path, hashPart } = parsed;
  const ctx = `path-info JSON for ${path}`;
  const info: PathInfo = {
    path,
    hashPart,
    narHash: withContext(ctx, () => parseHash(o['narHash'])),
    narSize: nonNegativeInteger(o['narSize'], `${ctx}: narSize`),
    references: stringArray(o['references'] ?? [], `${ctx}: references`)
      .map((r) => toStorePath(r, storeDir, 'reference').path)
      .sort(),
    signatures: signatures(o['signatures'], ctx),
  };
  const deriver = o['deriver'];
  if (typeof deriver === 'string') info.deriver = toStorePath(deriver, storeDir, 'deriver').path;
  else if (deriver !== undefined && deriver !== null)
    throw new FormatError(`${ctx}: deriver is not a string`);
  const ca = contentAddress(o['ca'], ctx);
  if (ca !== undefined) info.ca = ca;
  const time = o['registrationTime'];
  if (time !== undefined && time !== null)
    info.registrationTime = nonNegativeInteger(time, `${ctx}: registrationTime`);
  const ultimate = o['ultimate'];
  if (typeof ultimate === 'boolean') info.ultimate = ultimate;
  else if (ultimate !== undefined && ultimate !== null)
    throw new FormatError(`${ctx}: ultimate is not a boolean`);
  return info;
}

/** Strings `key:sig` (up to JSON v2) or objects `{keyName, sig}` (v3), both to `key:sig`. */
function signatures(v: unknown, ctx: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new FormatError(`${ctx}: signatures is not an array`);
  return v.map((s) => {
    if (typeof s === 'string') return s;
    const o = asObject(s, `${ctx}: a signature`);
    const { keyName, sig } = o;
    if (typeof keyName !== 'string' || typeof sig !== 'string' || keyName === '') {
      throw new FormatError(`${ctx}: a structured signature needs string "keyName" and "sig"`);
    }
    return `${keyName}:${sig}`;
  });
}

/**
 * CA as the narinfo string. JSON v2 objects {"method":"nar"|"flat"|"text"|"git","hash":...} map
 * to Nix's renderContentAddress forms: nar -> fixed:r:, flat -> fixed:, git -> fixed:git:, text -> text:.
 */
function contentAddress(v: unknown, ctx: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v === '' ? undefined : v;
  const o = asObject(v, `${ctx}: ca`);
  const prefixes: Record<string, string> = {
    nar: 'fixed:r:',
    flat: 'fixed:',
    git: 'fixed:git:',
    text: 'text:',
  };
  const prefix = typeof o['method'] === 'string' ? prefixes[o['method']] : undefined;
  if (prefix === undefined) throw new FormatError(`${ctx}: ca has an unknown method ${String(o['method'])}`);
  return prefix + formatHashNix32(withContext(ctx, () => parseHash(o['hash'])));
}

/** A full path as given, or a base name (2.33 JSON) resolved against the store dir: parsed once. */
function toStorePath(text: string, storeDir: string, what: string): StorePath {
  try {
    return text.startsWith('/') ? parseStorePath(text, storeDir) : parseStorePathBaseName(text, storeDir);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new FormatError(`path-info JSON: bad ${what}: ${msg}`, { cause: err });
  }
}

function asObject(v: unknown, what: string): JsonObject {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new FormatError(`path-info JSON: ${what} is not an object (is this nix path-info --json output?)`);
  }
  return v as JsonObject;
}

function stringArray(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) {
    throw new FormatError(`${what} is not an array of strings`);
  }
  return v;
}

function nonNegativeInteger(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new FormatError(`${what} is not a non-negative integer`);
  }
  return v;
}

function withContext<T>(ctx: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof FormatError) throw new FormatError(`${ctx}: ${err.message}`, { cause: err });
    throw err;
  }
}
