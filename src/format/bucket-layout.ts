// The layout of a binary cache, as Nix reads it over HTTP relative to the cache root and as the
// original Loft (v0.3.3, read in its source) writes it: object keys, content types and compression
// names. Upload, prune and verify all read it from here, so a bucket written by one is understood
// by the others.
//   nix-cache-info                            the cache's description (StoreDir, priority)
//   <hashPart>.narinfo                        the commit point, at the root
//   nar/<hashPart>-<NarHash nix32>-<id>.nar.<ext>  the compressed NAR, a new id per upload (the
//                                             original Loft's key has no id; `nix copy` names it
//                                             nar/<FileHash>.nar.<ext>), so readers follow a
//                                             narinfo's URL, never this pattern
//   .loft/...                                 loft's own state (prune marks, lease, roots:
//                                             format/loft-state.ts), invisible to Nix
//   <hashPart>.ls                             a file listing (`nix copy --write-nar-listing`,
//                                             format/nar-listing.ts)
//   log/<drv base name>                       a build log, shared by the derivation's outputs
//   realisations/<drv hash>!<out>.doi         a CA output's realisation, Nix <= 2.34 and Lix
//   build-trace-v2/<drv base name>/<out>.doi  the same for Nix >= 2.35 (format/realisation.ts)
//   debuginfo/<build id>.debug                where a debug file is (format/debug-info.ts)
// The NAR key depends only on what path-info already tells, so it is known before compressing.
import type { Hash } from './hash.js';
import { encodeNixBase32 } from './nix-base32.js';

export const NIX_CACHE_INFO_KEY = 'nix-cache-info';

/** What Nix's HTTP binary cache store sends for a NAR (`nar/*.nar*`). */
export const CONTENT_TYPE_NAR = 'application/x-nix-nar';
/** What Nix's binary cache store writes for `<hash>.narinfo`. */
export const CONTENT_TYPE_NARINFO = 'text/x-nix-narinfo';
/** What Nix's binary cache store writes for `nix-cache-info`. */
export const CONTENT_TYPE_NIX_CACHE_INFO = 'text/x-nix-cache-info';

/** What Nix's binary cache store writes for `log/<drv>` (upsertFile in binary-cache-store.cc). */
export const CONTENT_TYPE_BUILD_LOG = 'text/plain; charset=utf-8';

/**
 * `log_compression`: the Content-Encoding of `log/<drv>`, as Nix's `log-compression` (2.32+) sends
 * it. Nix >= 2.34 decodes br, zstd, gzip and deflate from an HTTP cache; an older Nix prints the
 * compressed bytes, so the default is none.
 */
export type LogCompression = 'none' | 'br' | 'zstd' | 'gzip';
export const LOG_COMPRESSIONS: readonly LogCompression[] = ['none', 'br', 'zstd', 'gzip'];

/** The compressions loft writes; Nix reads these (and more: bzip2, br, gzip... which loft reads but never writes). */
export type Compression = 'zstd' | 'xz' | 'none';

/**
 * Levels loft accepts per compression (the config's `compression_level` and the compressors alike).
 * zstd stops at 19: levels 20-22 ("ultra") need a window of up to 128 MiB on every client that
 * decodes, for a few percent. Negative ("fast") levels trade too much ratio for a cache written once.
 */
export const COMPRESSION_LEVELS = {
  zstd: { min: 1, max: 19, default: 3 },
  xz: { min: 0, max: 9, default: 6 },
  none: { min: 0, max: 0, default: 0 },
} as const satisfies Record<Compression, { min: number; max: number; default: number }>;

const HASH_PART = /^[0-9a-df-np-sv-z]{32}$/;

export function narinfoKey(hashPart: string): string {
  return `${hashPart}.narinfo`;
}

/**
 * @param uploadId loft adds one per upload (upload/upload-id.ts), so that no NAR key is ever
 *   written twice: a prune on another host may still be deleting a key it announced
 *   (prune/sweep-plan.ts), and a re-upload under that same key would lose its NAR. Without it,
 *   the original Loft's key.
 */
export function narKey(hashPart: string, narHash: Hash, compression: Compression, uploadId?: string): string {
  const id = uploadId === undefined ? '' : `-${uploadId}`;
  return `nar/${hashPart}-${encodeNixBase32(narHash.digest)}${id}.${narExtension(compression)}`;
}

export function listingKey(hashPart: string): string {
  return `${hashPart}.ls`;
}

/** @param drvBaseName the deriver's base name, `<hash>-<name>.drv` */
/** The folder of build logs, as a top-level listing names it. */
export const LOG_FOLDER = 'log/';

export function buildLogKey(drvBaseName: string): string {
  return `${LOG_FOLDER}${drvBaseName}`;
}

/** Prefixes of the objects that belong to paths besides their narinfo and NAR (prune, verify). */
export const EXTRA_PREFIXES = ['log/', 'realisations/', 'build-trace-v2/', 'debuginfo/'] as const;

/** The hash part of a root-level `<hash>.narinfo` key, or undefined for any other key. */
export function hashPartOfNarinfoKey(key: string): string | undefined {
  if (!key.endsWith('.narinfo')) return undefined;
  const hashPart = key.slice(0, -'.narinfo'.length);
  return HASH_PART.test(hashPart) ? hashPart : undefined;
}

/** The NAR file extension Nix's binary cache store uses for each compression. */
export function narExtension(kind: Compression): string {
  switch (kind) {
    case 'zstd':
      return 'nar.zst';
    case 'xz':
      return 'nar.xz';
    case 'none':
      return 'nar';
  }
}

/** The value of the narinfo `Compression:` field, as Nix writes it. */
export function narinfoCompressionName(kind: Compression): string {
  return kind;
}
