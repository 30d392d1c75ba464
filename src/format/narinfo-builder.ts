// The narinfo loft publishes for a path: what Nix registered (path-info) plus what the upload
// measured of the stored file, signed with our key. Pure, so it is tested byte for byte against
// narinfos written by `nix copy` and by the original Loft (test/unit/format/narinfo-builder.test.ts).
import { narinfoCompressionName, type Compression } from './bucket-layout.js';
import { fingerprintOfParsed } from './fingerprint.js';
import type { Hash } from './hash.js';
import type { NarInfo } from './narinfo.js';
import type { PathInfo } from './path-info.js';
import { signFingerprint, type SecretKey } from './signing-key.js';
import { baseNameOfParsed } from './store-path.js';

/** The stored NAR file, as the upload measured it. */
export interface StoredNar {
  /** Its key, relative to the cache root (the narinfo's URL). */
  url: string;
  compression: Compression;
  fileHash: Hash;
  fileSize: number;
}

export function buildNarInfo(info: PathInfo, nar: StoredNar, signingKey: SecretKey | undefined): NarInfo {
  // The references come as full paths because the fingerprint signs full paths; the narinfo
  // names them by base name. Both were checked when the PathInfo was made.
  const baseName = baseNameOfParsed;
  return {
    storePath: info.path,
    url: nar.url,
    compression: narinfoCompressionName(nar.compression),
    fileHash: nar.fileHash,
    fileSize: nar.fileSize,
    narHash: info.narHash,
    narSize: info.narSize,
    references: info.references.map(baseName),
    ...(info.deriver ? { deriver: baseName(info.deriver) } : {}),
    ...(info.ca ? { ca: info.ca } : {}),
    signatures: signaturesFor(info, signingKey),
    extra: [],
  };
}

/**
 * Our signature over Nix's fingerprint of the path, then the path's own signatures (from its
 * builder or another cache), once each: the original Loft's order.
 */
export function signaturesFor(info: PathInfo, signingKey: SecretKey | undefined): string[] {
  const signatures: string[] = [];
  if (signingKey) {
    const fingerprint = fingerprintOfParsed(info.path, info.narHash, info.narSize, info.references);
    signatures.push(signFingerprint(signingKey, fingerprint));
  }
  for (const sig of info.signatures) if (!signatures.includes(sig)) signatures.push(sig);
  return signatures;
}
