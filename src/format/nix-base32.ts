// Nix's base-32 ("nix32") text encoding of bytes, used in store path hash parts, narinfo hashes
// and NAR file names. Wire format:
//   alphabet  0123456789abcdfghijklmnpqrsvwxyz   (no e, o, t, u)
//   length    ceil(bytes * 8 / 5) characters      (sha256: 52, sha1 / store path hash: 32)
//   order     the LAST character holds bits 0..4 of byte 0: Nix walks the bit string from the
//             least significant end while printing characters from the most significant end
//             (libutil hash.cc printHash32 / parseHash32), so this is not RFC 4648 base32.
// Unused high bits of the first character must be zero; Nix rejects a string that sets them.
import { FormatError } from '../errors.js';

export const NIX_BASE32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

const DIGIT_OF = new Map<string, number>([...NIX_BASE32_ALPHABET].map((c, i) => [c, i]));

/** Number of characters Nix prints for `byteLength` bytes. */
export function nixBase32Length(byteLength: number): number {
  return Math.ceil((byteLength * 8) / 5);
}

export function encodeNixBase32(bytes: Uint8Array): string {
  const length = nixBase32Length(bytes.length);
  let out = '';
  // Character n (counted from the end of the string) carries bits 5n..5n+4 of the little-endian
  // bit string of `bytes`; those bits may straddle two bytes.
  for (let n = length - 1; n >= 0; n--) {
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    const low = (bytes[i] ?? 0) >> j;
    const high = i + 1 < bytes.length ? (bytes[i + 1] ?? 0) << (8 - j) : 0;
    out += NIX_BASE32_ALPHABET[(low | high) & 0x1f];
  }
  return out;
}

/**
 * Decodes a nix32 string. The byte length follows from the string length (52 chars -> 32 bytes);
 * a length that no byte count encodes to, a character outside the alphabet, or set bits beyond
 * the last byte throw FormatError.
 */
export function decodeNixBase32(s: string): Buffer {
  const size = Math.floor((s.length * 5) / 8);
  if (nixBase32Length(size) !== s.length) {
    throw new FormatError(`invalid nix base-32 string: length ${s.length} encodes no whole number of bytes`);
  }
  const out = Buffer.alloc(size);
  for (let n = 0; n < s.length; n++) {
    const c = s[s.length - 1 - n] ?? '';
    const digit = DIGIT_OF.get(c);
    if (digit === undefined) {
      throw new FormatError(
        `invalid nix base-32 string: character ${JSON.stringify(c)} is not in the alphabet ${NIX_BASE32_ALPHABET}`,
      );
    }
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    out[i] = (out[i] ?? 0) | ((digit << j) & 0xff);
    const carry = digit >> (8 - j);
    if (i + 1 < size) {
      out[i + 1] = (out[i + 1] ?? 0) | carry;
    } else if (carry !== 0) {
      // Same check as Nix's parseHash32: the leading character may only use the bits that fit.
      throw new FormatError(
        'invalid nix base-32 string: the first character sets bits beyond the hash length',
      );
    }
  }
  return out;
}

/** True when `s` is non-empty and every character is in the nix32 alphabet (no length check). */
export function isNixBase32Chars(s: string): boolean {
  // A regular expression, not a loop over DIGIT_OF: every store path of a closure is checked, and
  // this is several times faster on the many thousands of paths of a cached re-run.
  return NIX_BASE32_RE.test(s);
}

const NIX_BASE32_RE = /^[0-9a-df-np-sv-z]+$/;
