// The store watcher's memory of the entries it has seen, kept small: a daemon watching a store of
// 100,000 paths held them as a Set of full entry names, about 12 MB of strings and hash-table
// arrays kept for as long as it runs (heap snapshot of the idle daemon, issue 27).
//
// An entry is remembered by a 33-byte key: the 32 nix32 characters of its hash part and one byte
// for its kind, `p` for the store path itself and `l` for its `.lock` (which the watcher reads as a
// hint for the path, store-watcher.ts). The name after the hash is left out on purpose: Nix
// computes the hash part over the name too (libstore's makeStorePath hashes
// "<type>:sha256:<hash>:<storeDir>:<name>"), so two store paths with one hash part do not occur,
// and a binary cache could not hold both anyway: it names the narinfo after the hash part alone.
// Entries that are no hint at all (Nix's scratch names, `.chroot`, `.check`, `.drv` when those are
// not uploaded) are never stored: one of them sharing X's hash part must not make X look seen.
//
// The keys of a listing sit in one sorted Buffer (33 bytes each, binary search); what changes
// between two listings (paths reported by events, paths whose queueing failed) sits in two small
// Sets until the next listing replaces everything.
import { STORE_PATH_HASH_LENGTH } from '../format/store-path.js';

/** Bytes per key: the hash part and a kind byte. */
const KEY_BYTES = STORE_PATH_HASH_LENGTH + 1;
const LOCK_SUFFIX = '.lock';

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
  /** The keys of the last listing, sorted, KEY_BYTES each. */
  private listed: Buffer = Buffer.alloc(0);
  private readonly added = new Set<string>();
  private readonly removed = new Set<string>();

  /** Forgets everything and remembers `keys` (each KEY_BYTES one-byte characters). */
  reset(keys: string[]): void {
    keys.sort();
    const out = Buffer.allocUnsafeSlow(keys.length * KEY_BYTES);
    let n = 0;
    for (const [i, k] of keys.entries()) {
      if (k.length !== KEY_BYTES) throw new RangeError(`a seen-entry key is ${KEY_BYTES} characters: ${k}`);
      if (i > 0 && k === keys[i - 1]) continue;
      out.write(k, n * KEY_BYTES, 'latin1');
      n++;
    }
    // A copy of the used part, so that duplicates leave no unused tail behind.
    this.listed = n === keys.length ? out : Buffer.from(out.subarray(0, n * KEY_BYTES));
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
    return this.listed.length / KEY_BYTES - this.removed.size + this.added.size;
  }

  /** Bytes the keys take (the Sets' few entries not counted). */
  get bytes(): number {
    return this.listed.length;
  }

  private inListing(key: string): boolean {
    if (key.length !== KEY_BYTES) return false;
    const probe = Buffer.from(key, 'latin1');
    let lo = 0;
    let hi = this.listed.length / KEY_BYTES - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = probe.compare(this.listed, mid * KEY_BYTES, (mid + 1) * KEY_BYTES);
      if (c === 0) return true;
      if (c < 0) hi = mid - 1;
      else lo = mid + 1;
    }
    return false;
  }
}
