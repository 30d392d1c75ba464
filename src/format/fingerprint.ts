// The text a binary-cache signature covers (libstore path-info.cc, ValidPathInfo::fingerprint):
//   1;<store path>;sha256:<NarHash nix32>;<NarSize>;<reference full paths, sorted, comma-separated>
// e.g. 1;/nix/store/aaa..-top;sha256:0dn1..;600;/nix/store/bbb..-dep,/nix/store/aaa..-top
// There is no CA component: the original Loft appended ";<CA>", so its signatures on
// content-addressed paths do not verify in Nix. Nix refuses a NarHash that is not sha256.
import { FormatError } from '../errors.js';
import { formatHashNix32, type Hash } from './hash.js';
import { DEFAULT_STORE_DIR, parseStorePath } from './store-path.js';

export function fingerprintPath(
  storePath: string,
  narHash: Hash,
  narSize: number,
  references: string[],
  storeDir: string = DEFAULT_STORE_DIR,
): string {
  const path = checked(storePath, storeDir, 'the path');
  const refs = references.map((r) => checked(r, storeDir, 'a reference'));
  return fingerprintOfParsed(path, narHash, narSize, refs);
}

/**
 * The same text for a path and references that were parsed already (a PathInfo's: see
 * src/format/path-info.ts), as the narinfo builder has them: they are not parsed again.
 */
export function fingerprintOfParsed(
  path: string,
  narHash: Hash,
  narSize: number,
  references: readonly string[],
): string {
  if (narHash.algorithm !== 'sha256') {
    throw new FormatError(
      `cannot fingerprint ${path}: its NarHash is ${narHash.algorithm}, Nix signs only sha256`,
    );
  }
  if (!Number.isSafeInteger(narSize) || narSize < 0) {
    throw new FormatError(`cannot fingerprint ${path}: NarSize ${narSize} is not a non-negative integer`);
  }
  // Nix keeps references in a sorted set (StorePathSet), so order and duplicates from the caller
  // must not change the text.
  const refs = [...new Set(references)].sort();
  return `1;${path};${formatHashNix32(narHash)};${narSize};${refs.join(',')}`;
}

function checked(p: string, storeDir: string, what: string): string {
  try {
    return parseStorePath(p, storeDir).path;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new FormatError(`cannot fingerprint: ${what} is not a full store path: ${msg}`, { cause: err });
  }
}
