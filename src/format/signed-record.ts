// Records of narinfos a signing key was seen to sign, kept in the cache beside the prune state
// (format/loft-state.ts), so a host with no local state need not GET every present narinfo to
// learn whether it carries our signature (upload/re-sign.ts).
//   .loft/signed/<key id>/<writer id>.json    one object per writer (a process), rewritten by it
//     {"v":1,"kind":"signed","key":"<name>:<base64 public key>",
//      "narinfos":{"<hash32>":["<ETag>","<fingerprint digest>"],...}}
// An entry says: the narinfo `<hash32>.narinfo` whose ETag was <ETag> (as the PUT that wrote it or
// the GET that read it answered) carries a valid signature by `key` over the fingerprint whose
// digest is given (Nix's `1;<path>;<narHash>;<narSize>;<refs>`, format/fingerprint.ts). A reader
// trusts an entry only for the narinfo a listing shows with that very ETag and for the
// fingerprint its own Nix gives the path: any writer that replaces the narinfo (another host, the
// original Loft, `nix copy`) changes its ETag, so an entry never vouches for bytes its writer did
// not see. A missing, stale or unreadable record costs GETs, never a wrong answer.
// `<key id>` is a digest of the public key, so records of other keys are never read.
import { createHash } from 'node:crypto';
import { FormatError } from '../errors.js';
import { LOFT_PREFIX } from './loft-state.js';

export const SIGNED_PREFIX = `${LOFT_PREFIX}signed/`;

export interface SignedEntry {
  /** The narinfo's ETag, without quotes. */
  etag: string;
  /** fingerprintDigest() of the fingerprint the signature covers. */
  fingerprint: string;
}

/** Where the records of one public key (`name:base64`) live. */
export function signedRecordPrefix(publicKey: string): string {
  const id = createHash('sha256').update(publicKey, 'utf8').digest('hex').slice(0, 32);
  return `${SIGNED_PREFIX}${id}/`;
}

/** A record's key: `writer` is letters, digits and `-` (a process's own id). */
export function signedRecordKey(publicKey: string, writer: string): string {
  if (!/^[A-Za-z0-9-]{1,100}$/.test(writer)) throw new FormatError(`bad signed-record writer id: ${writer}`);
  return `${signedRecordPrefix(publicKey)}${writer}.json`;
}

/** 128 bits of the fingerprint's sha256, base64url: enough to tell contents apart, 22 characters. */
export function fingerprintDigest(fingerprint: string): string {
  return createHash('sha256').update(fingerprint, 'utf8').digest().subarray(0, 16).toString('base64url');
}

export function renderSignedRecord(publicKey: string, entries: ReadonlyMap<string, SignedEntry>): string {
  const narinfos: Record<string, [string, string]> = {};
  for (const [h, e] of entries) narinfos[h] = [e.etag, e.fingerprint];
  return JSON.stringify({ v: 1, kind: 'signed', key: publicKey, narinfos });
}

const HASH_PART = /^[0-9a-df-np-sv-z]{32}$/;

/**
 * The entries of a record written for `publicKey`. Throws FormatError for anything else: another
 * version, another key (a digest collision or a copied object), malformed entries.
 */
export function parseSignedRecord(text: string, publicKey: string): Map<string, SignedEntry> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new FormatError('signed record is not JSON');
  }
  const o = v as { v?: unknown; kind?: unknown; key?: unknown; narinfos?: unknown };
  if (o === null || typeof o !== 'object' || o.v !== 1 || o.kind !== 'signed') {
    throw new FormatError('not a version 1 signed record');
  }
  if (o.key !== publicKey) throw new FormatError('signed record of another key');
  if (o.narinfos === null || typeof o.narinfos !== 'object' || Array.isArray(o.narinfos)) {
    throw new FormatError('signed record without narinfos');
  }
  const out = new Map<string, SignedEntry>();
  for (const [h, e] of Object.entries(o.narinfos as Record<string, unknown>)) {
    const ok =
      HASH_PART.test(h) &&
      Array.isArray(e) &&
      e.length === 2 &&
      typeof e[0] === 'string' &&
      e[0] !== '' &&
      typeof e[1] === 'string' &&
      e[1] !== '';
    if (!ok) throw new FormatError(`signed record has a malformed entry for ${h}`);
    out.set(h, { etag: e[0] as string, fingerprint: e[1] as string });
  }
  return out;
}
