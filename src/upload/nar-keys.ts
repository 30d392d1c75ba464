// Object keys of the bucket layout shared with the original Loft (FINDINGS):
//   <hashPart>.narinfo                       the commit point, at the root
//   nar/<hashPart>-<NarHash nix32>.nar.<ext>  the compressed NAR
// The NAR key depends only on what path-info already tells, so it is known before compressing.
import { encodeNixBase32 } from '../format/nix-base32.js';
import type { Hash } from '../format/hash.js';
import { narExtension, type Compression } from './compression.js';

export const NIX_CACHE_INFO_KEY = 'nix-cache-info';

export function narinfoKey(hashPart: string): string {
  return `${hashPart}.narinfo`;
}

export function narKey(hashPart: string, narHash: Hash, compression: Compression): string {
  return `nar/${hashPart}-${encodeNixBase32(narHash.digest)}.${narExtension(compression)}`;
}

/** The hash part of a root-level `<hash>.narinfo` key, or undefined for any other key. */
export function hashPartOfNarinfoKey(key: string): string | undefined {
  const m = /^([0-9a-df-np-sv-z]{32})\.narinfo$/.exec(key);
  return m?.[1];
}
