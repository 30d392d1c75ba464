// The store watcher's memory of the entries it has seen, kept small: a daemon watching a store of
// 100,000 paths held them as a Set of full entry names, about 12 MB of strings and hash-table
// arrays kept for as long as it runs (heap snapshot of the idle daemon, issue 27).
//
// An entry is remembered by a 33-character key: the 32 nix32 characters of its hash part and one character
// for its kind, `p` for the store path itself and `l` for its `.lock` (which the watcher reads as a
// hint for the path, store-watcher.ts). The name after the hash is left out on purpose: Nix
// computes the hash part over the name too (libstore's makeStorePath hashes
// "<type>:sha256:<hash>:<storeDir>:<name>"), so two store paths with one hash part do not occur,
// and a binary cache could not hold both anyway: it names the narinfo after the hash part alone.
// Entries that are no hint at all (Nix's scratch names, `.chroot`, `.check`, `.drv` when those are
// not uploaded) are never stored: one of them sharing X's hash part must not make X look seen.
//
// The keys of a listing sit in two sorted Buffers, one per kind, 20 bytes a key: the hash part's 32
// nix32 digits of 5 bits each, packed most significant first, so that the bytes sort as the
// characters do (binary search). What changes between two listings (paths reported by events, paths
// whose queueing failed) sits in two small Sets of key strings until the next listing replaces
// everything.
import { STORE_PATH_HASH_LENGTH } from '../format/store-path.js';
import { NIX_BASE32_ALPHABET } from '../format/nix-base32.js';

/** Characters per key: the hash part and a kind character. */
const KEY_LENGTH = STORE_PATH_HASH_LENGTH + 1;
/** Bytes a listed key takes: 32 digits of 5 bits (the kind is which Buffer holds it). */
const PACKED_BYTES = (STORE_PATH_HASH_LENGTH * 5) / 8;
const LOCK_SUFFIX = '.lock';
const KINDS = ['p', 'l'] as const;

/** The 5-bit value of each nix32 character by char code; -1 for any other character. */
const DIGIT = new Int8Array(128).fill(-1);
for (const [i, c] of [...NIX_BASE32_ALPHABET].entries()) DIGIT[c.charCodeAt(0)] = i;

/**
 * Packs the hash part of `key` into `out` at `at` (PACKED_BYTES), 8 digits (40 bits, exact in a
 * double) at a time; false when a character is not a nix32 digit.
 */
function pack(key: string, out: Buffer, at: number): boolean {
  for (let group = 0; group < 4; group++) {
    let bits = 0;
    for (let k = 0; k < 8; k++) {
      const code = key.charCodeAt(group * 8 + k);
      const digit = code < 128 ? DIGIT[code]! : -1;
      if (digit < 0) return false;
      bits = bits * 32 + digit;
    }
    out.writeUIntBE(bits, at + group * 5, 5);
  }
  return true;
}

/**
 * The key of entry `name` whose hinted store path's base name is `baseName` (the caller has
 * checked that the entry is a hint: `name` is `baseName` or `baseName.lock`).
 */
export function seenKey(name: string, baseName: string): string {
  return baseName.slice(0, STORE_PATH_HASH_LENGTH) + (name === baseName ? 'p' : 'l');
}

/**
 * The key `name` would have if it were a hint, without checking that it is one. Good enough for a
 * lookup: for a hint it is its key; for any other name a wrong answer only decides whether a name
 * that will be dropped anyway is looked at again.
 */
export function lookupKey(name: string): string {
  return name.slice(0, STORE_PATH_HASH_LENGTH) + (name.endsWith(LOCK_SUFFIX) ? 'l' : 'p');
}

export class SeenEntries {
  /** The keys of the last listing by kind (`p`, `l`), packed and sorted, PACKED_BYTES each. */
  private listed: [Buffer, Buffer] = [Buffer.alloc(0), Buffer.alloc(0)];
  private readonly added = new Set<string>();
  private readonly removed = new Set<string>();
  /** The packed form of the key looked up last (one Buffer, not one per lookup). */
  private readonly probe = Buffer.alloc(PACKED_BYTES);

  /** Forgets everything and remembers `keys` (each a hash part and a kind character). */
  reset(keys: string[]): void {
    for (const k of keys) {
      if (k.length !== KEY_LENGTH || !KINDS.includes(k[STORE_PATH_HASH_LENGTH] as 'p')) {
        throw new RangeError(`a seen-entry key is ${KEY_LENGTH} characters ending in p or l: ${k}`);
      }
    }
    keys.sort();
    this.listed = [this.packKind(keys, 'p'), this.packKind(keys, 'l')];
    this.added.clear();
    this.removed.clear();
  }

  has(key: string): boolean {
    if (this.added.has(key)) return true;
    return !this.removed.has(key) && this.inListing(key);
  }

  add(key: string): void {
    this.removed.delete(key);
    if (!this.inListing(key)) this.added.add(key);
  }

  delete(key: string): void {
    this.added.delete(key);
    if (this.inListing(key)) this.removed.add(key);
  }

  /** How many keys are remembered. */
  get size(): number {
    return this.bytes / PACKED_BYTES - this.removed.size + this.added.size;
  }

  /** Bytes the keys take (the Sets' few entries not counted). */
  get bytes(): number {
    return this.listed[0].length + this.listed[1].length;
  }

  /** The sorted `keys` of one kind, packed, duplicates once. */
  private packKind(sorted: string[], kind: 'p' | 'l'): Buffer {
    const ofKind = sorted.filter((k, i) => k[STORE_PATH_HASH_LENGTH] === kind && k !== sorted[i - 1]);
    const out = Buffer.allocUnsafeSlow(ofKind.length * PACKED_BYTES);
    for (const [i, k] of ofKind.entries()) {
      if (!pack(k, out, i * PACKED_BYTES))
        throw new RangeError(`a seen-entry key is a nix32 hash part: ${k}`);
    }
    return out;
  }

  private inListing(key: string): boolean {
    if (key.length !== KEY_LENGTH) return false;
    const kind = KINDS.indexOf(key[STORE_PATH_HASH_LENGTH] as 'p');
    if (kind < 0 || !pack(key, this.probe, 0)) return false;
    const listed = this.listed[kind]!;
    let lo = 0;
    let hi = listed.length / PACKED_BYTES - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.probe.compare(listed, mid * PACKED_BYTES, (mid + 1) * PACKED_BYTES);
      if (c === 0) return true;
      if (c < 0) hi = mid - 1;
      else lo = mid + 1;
    }
    return false;
  }
}
