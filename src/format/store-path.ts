// Store paths (libstore path.cc, StorePath / Store::parseStorePath). Wire format:
//   <storeDir>/<hash>-<name>        e.g. /nix/store/fid14rzhsmnh0gnybql68w3capggz9ih-hello.txt
//   hash  32 nix32 characters (160 bits), the "hash part" that names the narinfo: <hash>.narinfo
//   name  1..211 characters of [A-Za-z0-9+\-._?=], not starting with '.'
// The base name is `<hash>-<name>`; narinfo References and Deriver carry base names, path-info
// JSON carries full paths (Nix 2.8..2.32) or base names (2.33 structured JSON).
import { InvalidPathError } from '../errors.js';
import { isNixBase32Chars } from './nix-base32.js';

export const DEFAULT_STORE_DIR = '/nix/store';
export const STORE_PATH_HASH_LENGTH = 32;
/** Nix: the base name is at most 243 bytes, so the name after `<hash>-` at most 211. */
export const STORE_PATH_NAME_MAX = 211;

export interface StorePath {
  storeDir: string;
  /** The 32 nix32 characters before the first '-'. */
  hashPart: string;
  name: string;
  /** `<storeDir>/<hashPart>-<name>` */
  path: string;
}

const NAME_RE = /^[A-Za-z0-9+\-._?=]+$/;

export function isValidStorePathName(name: string): boolean {
  return name.length > 0 && name.length <= STORE_PATH_NAME_MAX && !name.startsWith('.') && NAME_RE.test(name);
}

/** Parses a full store path; throws InvalidPathError saying which rule it breaks. */
export function parseStorePath(path: string, storeDir: string = DEFAULT_STORE_DIR): StorePath {
  const dir = checkStoreDir(storeDir);
  if (!path.startsWith(`${dir}/`)) {
    throw new InvalidPathError(path, `${shown(path)} is not a store path: it is not directly in ${dir}`);
  }
  return parseBaseName(path.slice(dir.length + 1), dir, path);
}

/** Parses `<hash>-<name>` relative to `storeDir`; throws InvalidPathError. */
export function parseStorePathBaseName(baseName: string, storeDir: string = DEFAULT_STORE_DIR): StorePath {
  const dir = checkStoreDir(storeDir);
  return parseBaseName(baseName, dir, baseName);
}

/** `<hash>-<name>` of a full store path (validated). */
export function storePathBaseName(path: string, storeDir: string = DEFAULT_STORE_DIR): string {
  const p = parseStorePath(path, storeDir);
  return `${p.hashPart}-${p.name}`;
}

/** The 32-character hash part of a full store path (validated): the narinfo's file name stem. */
export function hashPartOf(path: string, storeDir: string = DEFAULT_STORE_DIR): string {
  return parseStorePath(path, storeDir).hashPart;
}

/**
 * The base name of a store path that was parsed already (a PathInfo's path, references, deriver:
 * checked once where they entered, src/format/path-info.ts or src/store/nix-db.ts). No second check:
 * a full path is `<storeDir>/<base name>` and a base name holds no '/'.
 */
export function baseNameOfParsed(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The hash part of a store path that was parsed already (see baseNameOfParsed). */
export function hashPartOfParsed(path: string): string {
  return baseNameOfParsed(path).slice(0, STORE_PATH_HASH_LENGTH);
}

/** True when `path` parses as a store path in `storeDir`. */
export function isStorePath(path: string, storeDir: string = DEFAULT_STORE_DIR): boolean {
  try {
    parseStorePath(path, storeDir);
    return true;
  } catch {
    return false;
  }
}

function parseBaseName(base: string, dir: string, original: string): StorePath {
  // Built only for an error: a closure parses thousands of valid paths.
  const what = (): string => `${shown(original)} is not a valid store path`;
  if (base.includes('/')) {
    throw new InvalidPathError(
      original,
      `${what()}: it names a file inside a store path, not the path itself`,
    );
  }
  const hashPart = base.slice(0, STORE_PATH_HASH_LENGTH);
  if (base.length < STORE_PATH_HASH_LENGTH + 2 || base[STORE_PATH_HASH_LENGTH] !== '-') {
    throw new InvalidPathError(original, `${what()}: expected <32-character hash>-<name> after ${dir}/`);
  }
  if (!isNixBase32Chars(hashPart)) {
    throw new InvalidPathError(original, `${what()}: the hash part has characters outside nix base-32`);
  }
  const name = base.slice(STORE_PATH_HASH_LENGTH + 1);
  if (name.length > STORE_PATH_NAME_MAX) {
    throw new InvalidPathError(
      original,
      `${what()}: the name is longer than ${STORE_PATH_NAME_MAX} characters`,
    );
  }
  if (name.startsWith('.')) {
    throw new InvalidPathError(original, `${what()}: the name starts with '.'`);
  }
  if (!NAME_RE.test(name)) {
    throw new InvalidPathError(original, `${what()}: the name may only hold A-Z a-z 0-9 + - . _ ? =`);
  }
  return { storeDir: dir, hashPart, name, path: `${dir}/${base}` };
}

/** The store directory must be absolute and canonical; a trailing slash is dropped, as Nix does. */
function checkStoreDir(storeDir: string): string {
  if (storeDir === lastStoreDir.given) return lastStoreDir.checked;
  const dir = storeDir.length > 1 ? storeDir.replace(/\/+$/, '') : storeDir;
  if (!dir.startsWith('/') || dir === '/' || dir.includes('//') || /(^|\/)\.\.?(\/|$)/.test(dir)) {
    throw new InvalidPathError(
      storeDir,
      `store directory ${shown(storeDir)} must be an absolute canonical path`,
    );
  }
  lastStoreDir = { given: storeDir, checked: dir };
  return dir;
}

/** Every path of a run is in one store: its directory is checked once. */
let lastStoreDir = { given: '', checked: '' };

/** Quotes a path for an error message, cut short so a huge input cannot flood a log line. */
function shown(s: string): string {
  return JSON.stringify(s.length > 300 ? `${s.slice(0, 300)}...` : s);
}

/**
 * A derivation file (`<hash>-<name>.drv`), by its name as Nix names it. `upload_derivations = false`
 * keeps these out of the daemon's watch hints and out of uploads nobody asked for by name.
 */
export function isDerivation(pathOrBaseName: string): boolean {
  return pathOrBaseName.endsWith('.drv');
}
