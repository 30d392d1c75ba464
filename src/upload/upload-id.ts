// A fresh id for each NAR upload, part of its key (format/bucket-layout.ts narKey): no NAR key is
// ever written twice, so a prune on another host deleting a key it announced cannot take a new
// upload's NAR with it.
import { randomBytes } from 'node:crypto';
import { encodeNixBase32 } from '../format/nix-base32.js';

/** 8 nix-base32 characters (40 random bits). */
export function newUploadId(): string {
  return encodeNixBase32(randomBytes(5));
}
