// Object keys of the bucket layout shared with the original Loft (FINDINGS):
//   <hashPart>.narinfo                       the commit point, at the root
//   nar/<hashPart>-<NarHash nix32>-<upload id>.nar.<ext>  the compressed NAR
// The NAR key depends only on what path-info already tells and a random id chosen per upload, so
// it is known before compressing. The id means no key is ever written twice: a prune on another
// host may still be deleting a key it announced (src/prune/sweep-plan.ts), and a re-upload under
// that same key would lose its NAR. Readers follow the narinfo's URL, so the original Loft's
// `nar/<hashPart>-<NarHash>.nar.<ext>` and `nix copy`'s `nar/<FileHash>.nar.<ext>` read the same.
import { randomBytes } from 'node:crypto';
import { encodeNixBase32 } from '../format/nix-base32.js';
import type { Hash } from '../format/hash.js';
import { narExtension, type Compression } from './compression.js';

export const NIX_CACHE_INFO_KEY = 'nix-cache-info';

export function narinfoKey(hashPart: string): string {
  return `${hashPart}.narinfo`;
}

export function narKey(hashPart: string, narHash: Hash, compression: Compression, uploadId?: string): string {
  const id = uploadId === undefined ? '' : `-${uploadId}`;
  return `nar/${hashPart}-${encodeNixBase32(narHash.digest)}${id}.${narExtension(compression)}`;
}

/** 8 nix-base32 characters (40 random bits): a fresh id for each NAR upload. */
export function newUploadId(): string {
  return encodeNixBase32(randomBytes(5));
}

/** The hash part of a root-level `<hash>.narinfo` key, or undefined for any other key. */
export function hashPartOfNarinfoKey(key: string): string | undefined {
  const m = /^([0-9a-df-np-sv-z]{32})\.narinfo$/.exec(key);
  return m?.[1];
}
