// The narinfo loft publishes for a path: what Nix registered (path-info) plus what the upload
// measured of the stored file, signed with our key. Pure, so it is tested byte for byte against
// narinfos written by `nix copy` and by the original Loft (test/unit/format/narinfo-builder.test.ts).
import { narinfoCompressionName, type Compression } from './bucket-layout.js';
import { fingerprintPath } from './fingerprint.js';
import type { Hash } from './hash.js';
import type { NarInfo } from './narinfo.js';
import type { PathInfo } from './path-info.js';
import { signFingerprint, type SecretKey } from './signing-key.js';
import { storePathBaseName } from './store-path.js';

/** The stored NAR file, as the upload measured it. */
export interface StoredNar {
  /** Its key, relative to the cache root (the narinfo's URL). */
  url: string;
  compression: Compression;
  fileHash: Hash;
  fileSize: number;
}

export function buildNarInfo(
  info: PathInfo,
  nar: StoredNar,
  storeDir: string,
  signingKey: SecretKey | undefined,
): NarInfo {
  const baseName = (p: string) => storePathBaseName(p, storeDir);
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
    signatures: signaturesFor(info, storeDir, signingKey),
    extra: [],
  };
}

/**
 * Our signature over Nix's fingerprint of the path, then the path's own signatures (from its
 * builder or another cache), once each: the original Loft's order.
 */
export function signaturesFor(info: PathInfo, storeDir: string, signingKey: SecretKey | undefined): string[] {
  const signatures: string[] = [];
  if (signingKey) {
    const fingerprint = fingerprintPath(info.path, info.narHash, info.narSize, info.references, storeDir);
    signatures.push(signFingerprint(signingKey, fingerprint));
  }
  for (const sig of info.signatures) if (!signatures.includes(sig)) signatures.push(sig);
  return signatures;
}
