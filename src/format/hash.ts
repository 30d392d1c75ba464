// Hashes in every text form Nix prints or accepts (libutil hash.cc, Hash::parseAny / to_string):
//   SRI           sha256-<base64>              (path-info --json narHash on Nix 2.4+)
//   typed         sha256:<nix32|hex|base64>    (narinfo NarHash/FileHash, CA); the digest length
//                 tells the encoding apart: sha256 is 64 hex, 52 nix32 or 44 base64 characters
//   bare          <nix32|hex|base64>           only with an algorithm known from context
//   structured    {"algorithm":"sha256","format":"base64"|"nix32"|"base16"|"sri","hash":"..."}
//                 (Nix 2.33+ JSON, hash-v1 schema; without `format`, `hash` is read as above)
// Printing: sha256:<nix32> (narinfo, fingerprint), SRI, and sha256:<hex>.
import { FormatError } from '../errors.js';
import { decodeNixBase32, encodeNixBase32, nixBase32Length } from './nix-base32.js';

export type HashAlgorithm = 'md5' | 'sha1' | 'sha256' | 'sha512';

export interface Hash {
  algorithm: HashAlgorithm;
  digest: Buffer;
}

export const HASH_SIZES: Readonly<Record<HashAlgorithm, number>> = {
  md5: 16,
  sha1: 20,
  sha256: 32,
  sha512: 64,
};

export function isHashAlgorithm(s: string): s is HashAlgorithm {
  return Object.prototype.hasOwnProperty.call(HASH_SIZES, s);
}

type Encoding = 'base16' | 'nix32' | 'base64';

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const HEX_RE = /^[0-9a-fA-F]*$/;

/**
 * Parses a hash in any form listed at the top of this file. `defaultAlgorithm` is needed only for
 * bare digests. Throws FormatError for anything else (unknown algorithm such as blake3, wrong
 * length, bad characters, algorithm mismatch in a structured hash).
 */
export function parseHash(input: unknown, defaultAlgorithm?: HashAlgorithm): Hash {
  if (typeof input === 'string') return parseHashString(input, defaultAlgorithm);
  if (typeof input === 'object' && input !== null && !Array.isArray(input)) {
    return parseStructuredHash(input as Record<string, unknown>);
  }
  throw new FormatError(
    `invalid hash: expected a string or a {algorithm, hash} object, got ${describe(input)}`,
  );
}

function parseHashString(s: string, defaultAlgorithm: HashAlgorithm | undefined): Hash {
  const sri = /^([a-z0-9]+)-(.*)$/.exec(s);
  if (sri !== null) {
    const algorithm = algorithmOf(sri[1] ?? '');
    return { algorithm, digest: decodeDigest(sri[2] ?? '', algorithm, 'base64') };
  }
  const colon = s.indexOf(':');
  if (colon >= 0) {
    const algorithm = algorithmOf(s.slice(0, colon));
    return { algorithm, digest: decodeDigest(s.slice(colon + 1), algorithm, undefined) };
  }
  if (defaultAlgorithm === undefined) {
    throw new FormatError(
      `invalid hash ${quote(s)}: no algorithm prefix (write it as sha256:... or sha256-...)`,
    );
  }
  return { algorithm: defaultAlgorithm, digest: decodeDigest(s, defaultAlgorithm, undefined) };
}

function parseStructuredHash(o: Record<string, unknown>): Hash {
  const algo = o['algorithm'];
  const text = o['hash'];
  const format = o['format'];
  if (typeof algo !== 'string' || typeof text !== 'string') {
    throw new FormatError('invalid structured hash: needs string fields "algorithm" and "hash"');
  }
  const algorithm = algorithmOf(algo);
  if (format === undefined || format === 'sri') {
    // 'sri' carries the prefix in `hash`; without a format, any form Nix prints is accepted.
    const h = parseHashString(text, algorithm);
    if (h.algorithm !== algorithm) {
      throw new FormatError(
        `invalid structured hash: algorithm ${algorithm} but the hash says ${h.algorithm}`,
      );
    }
    return h;
  }
  const encodings: Record<string, Encoding> = {
    base16: 'base16',
    nix32: 'nix32',
    base32: 'nix32',
    base64: 'base64',
  };
  const encoding = typeof format === 'string' ? encodings[format] : undefined;
  if (encoding === undefined) {
    throw new FormatError(
      `invalid structured hash: unknown format ${describe(format)} (base16, nix32, base64, sri)`,
    );
  }
  return { algorithm, digest: decodeDigest(text, algorithm, encoding) };
}

function algorithmOf(name: string): HashAlgorithm {
  if (isHashAlgorithm(name)) return name;
  throw new FormatError(
    `unsupported hash algorithm ${quote(name)}: loft handles md5, sha1, sha256 and sha512`,
  );
}

/** Decodes a digest; with `encoding` undefined the length picks it, as Nix's Hash::parseAny does. */
function decodeDigest(text: string, algorithm: HashAlgorithm, encoding: Encoding | undefined): Buffer {
  const size = HASH_SIZES[algorithm];
  const chosen = encoding ?? encodingByLength(text.length, size);
  if (chosen === undefined) {
    throw new FormatError(
      `invalid ${algorithm} hash: ${text.length} characters fit none of hex (${size * 2}), ` +
        `nix32 (${nixBase32Length(size)}) or base64 (${base64Length(size)})`,
    );
  }
  const digest = decodeAs(text, chosen, algorithm);
  if (digest.length !== size) {
    throw new FormatError(
      `invalid ${algorithm} hash: ${chosen} digest has ${digest.length} bytes, expected ${size}`,
    );
  }
  return digest;
}

function encodingByLength(length: number, size: number): Encoding | undefined {
  if (length === size * 2) return 'base16';
  if (length === nixBase32Length(size)) return 'nix32';
  if (length === base64Length(size)) return 'base64';
  return undefined;
}

function decodeAs(text: string, encoding: Encoding, algorithm: HashAlgorithm): Buffer {
  if (encoding === 'nix32') return decodeNixBase32(text);
  if (encoding === 'base16') {
    if (!HEX_RE.test(text) || text.length % 2 !== 0) {
      throw new FormatError(`invalid ${algorithm} hash: not a hexadecimal string`);
    }
    return Buffer.from(text, 'hex');
  }
  // Node's base64 decoder skips junk silently, so check the text is canonical padded base64.
  const bytes = Buffer.from(text, 'base64');
  if (!BASE64_RE.test(text) || text.length % 4 !== 0 || bytes.toString('base64') !== text) {
    throw new FormatError(`invalid ${algorithm} hash: not canonical padded base64`);
  }
  return bytes;
}

function base64Length(size: number): number {
  return 4 * Math.ceil(size / 3);
}

/** `sha256:<nix32>`: the form of narinfo NarHash/FileHash and of the signing fingerprint. */
export function formatHashNix32(h: Hash): string {
  return `${h.algorithm}:${encodeNixBase32(h.digest)}`;
}

/** `sha256-<base64>` (Subresource Integrity), as `nix path-info --json` prints narHash. */
export function formatHashSri(h: Hash): string {
  return `${h.algorithm}-${h.digest.toString('base64')}`;
}

/** `sha256:<hex>` (the bare digest in hex is `h.digest.toString('hex')`). */
export function formatHashHex(h: Hash): string {
  return `${h.algorithm}:${h.digest.toString('hex')}`;
}

export function sha256Hash(digest: Buffer): Hash {
  if (digest.length !== HASH_SIZES.sha256) {
    throw new FormatError(`invalid sha256 digest: ${digest.length} bytes, expected 32`);
  }
  return { algorithm: 'sha256', digest };
}

export function hashEquals(a: Hash, b: Hash): boolean {
  return a.algorithm === b.algorithm && a.digest.equals(b.digest);
}

function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? quote(v) : typeof v;
}
