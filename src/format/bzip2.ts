// bzip2 decoder, for the build logs Nix keeps compressed (`compress-build-log`, on by default):
// decoding them here spares a `bzip2 -dc` child per log, and each child is a fork of the whole
// uploader, which cost more CPU than hashing every NAR (docs/architecture.md, "Build logs without a
// fork"). The format, as bzip2 1.0.8's decompress.c reads it (bits most significant first):
//
//   stream = "BZh" level('1'-'9') block* end [stream]        (pbzip2 concatenates streams)
//   block  = 0x314159265359(48) crc(32) randomised(1) origPtr(24)
//            used16(16) used(16 per set bit)                 which byte values occur
//            nGroups(3, 2-6) nSelectors(15) selectorMTF(unary each)
//            per group: len0(5) then per symbol (1x: 0 = done, 10 = +1, 11 = -1)
//            Huffman symbols, a table per 50: RUNA/RUNB runs of the front byte, MTF indexes, EOB
//   end    = 0x177245385090(48) combinedCrc(32), then padding to a byte
// A block undoes the move-to-front, then the Burrows-Wheeler transform, then the run-length step
// (four equal bytes are followed by a count of 0-255 more); its CRC covers the result. Pure: no I/O.
import { FormatError } from '../errors.js';

const BLOCK_MAGIC = 0x314159265359;
const END_MAGIC = 0x177245385090;
const GROUP_SIZE = 50;
const MAX_GROUPS = 6;
const MAX_SELECTORS = 18002;
const MAX_CODE_LENGTH = 20;

/** Thrown when the output would exceed the caller's limit. */
export class Bzip2TooLarge extends Error {
  override readonly name = 'Bzip2TooLarge';
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

class BitReader {
  #pos = 0; // next byte
  #buf = 0; // bits read ahead, the last #count of them not yet consumed
  #count = 0;
  constructor(private readonly bytes: Uint8Array) {}

  /** The next `n` bits (any n up to 48), most significant first. */
  bits(n: number): number {
    if (n > 24) return this.bits(n - 24) * 0x1000000 + this.bits(24);
    while (this.#count < n) {
      const byte = this.bytes[this.#pos++];
      if (byte === undefined) throw bad('it ends early');
      this.#buf = (this.#buf << 8) | byte;
      this.#count += 8;
    }
    this.#count -= n;
    return (this.#buf >>> this.#count) & ((1 << n) - 1);
  }

  bit(): number {
    return this.bits(1);
  }

  alignToByte(): void {
    this.#count -= this.#count & 7;
  }

  get bytesLeft(): number {
    return this.bytes.length - this.#pos + (this.#count >>> 3);
  }
}

function bad(why: string): FormatError {
  return new FormatError(`not a valid bzip2 file: ${why}`);
}

/** Decodes every stream of a .bz2 file; throws FormatError on a damaged one, Bzip2TooLarge over `limit`. */
export function decodeBzip2(input: Uint8Array, limit = Number.MAX_SAFE_INTEGER): Buffer {
  const out = new Output(limit);
  const r = new BitReader(input);
  do {
    if (r.bits(24) !== 0x425a68) throw bad('no "BZh" header');
    const level = r.bits(8) - 0x30;
    if (level < 1 || level > 9) throw bad('its block size is not 1-9');
    // Made for the first block only: an empty log (a build that printed nothing) is a stream with
    // no block, and zeroing level x 400 kB for each of them was most of the time spent on logs.
    let tt: Uint32Array | undefined;
    let combined = 0;
    for (;;) {
      const magic = r.bits(48);
      const crc = r.bits(32) >>> 0;
      if (magic === END_MAGIC) {
        if (crc !== combined >>> 0) throw bad('the stream CRC does not match');
        break;
      }
      if (magic !== BLOCK_MAGIC) throw bad('a block header is missing');
      tt ??= new Uint32Array(level * 100000);
      const got = decodeBlock(r, tt, out);
      if (got !== crc) throw bad('a block CRC does not match');
      combined = ((combined << 1) | (combined >>> 31)) ^ got;
    }
    r.alignToByte();
  } while (r.bytesLeft > 0);
  return out.result();
}

/** Output bytes in a growing buffer. */
class Output {
  buf = Buffer.allocUnsafe(64 * 1024);
  len = 0;
  constructor(private readonly limit: number) {}

  /** Room for `n` more bytes at `len`. */
  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(grown, 0, 0, this.len);
    this.buf = grown;
  }

  /** Throws once more than the limit has been written. */
  check(): void {
    if (this.len > this.limit) throw new Bzip2TooLarge('the decoded output is over its limit');
  }

  result(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

/** One block into `out`; returns its CRC. `tt` holds the block (at most level x 100,000 bytes). */
function decodeBlock(r: BitReader, tt: Uint32Array, out: Output): number {
  if (r.bit() !== 0) throw bad('randomised blocks (bzip2 0.9.0) are not supported');
  const origPtr = r.bits(24);
  const symbols = usedBytes(r);
  const alphaSize = symbols.length + 2;
  const tables = huffmanTables(r, alphaSize);
  const counts = new Uint32Array(256);
  const n = mtfDecode(r, tables, symbols, tt, counts);
  if (origPtr >= n) throw bad('its origin pointer is outside the block');
  // Inverse BWT: link each position to the next byte's position (bzip2's "fast" tt layout).
  let sum = 0;
  const start = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    start[i] = sum;
    sum += counts[i]!;
  }
  for (let i = 0; i < n; i++) {
    const b = tt[i]! & 0xff;
    tt[start[b]!++]! |= i << 8;
  }
  // Undo the run-length step while walking the links; the CRC covers the bytes written.
  let crc = 0xffffffff;
  let pos = tt[origPtr]! >>> 8;
  let last = -1;
  let run = 0;
  out.reserve(n);
  let buf = out.buf;
  let len = out.len;
  for (let i = 0; i < n; i++) {
    const v = tt[pos]!;
    const b = v & 0xff;
    pos = v >>> 8;
    let times = 1;
    if (run === 4) {
      times = b; // the count after four equal bytes, of more of the same
      run = 0;
      if (len + times + (n - i) > buf.length) {
        out.len = len;
        out.check();
        out.reserve(times + (n - i));
        buf = out.buf;
      }
    } else {
      run = b === last ? run + 1 : 1;
      last = b;
    }
    const byte = run === 0 ? last : b;
    for (let k = 0; k < times; k++) {
      buf[len++] = byte;
      crc = (crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ byte) & 0xff]!;
    }
    if (run === 0) last = -1;
  }
  out.len = len;
  out.check();
  return ~crc >>> 0;
}

function usedBytes(r: BitReader): number[] {
  const used16 = r.bits(16);
  const symbols: number[] = [];
  for (let i = 0; i < 16; i++) {
    if (!(used16 & (0x8000 >>> i))) continue;
    const bits = r.bits(16);
    for (let j = 0; j < 16; j++) if (bits & (0x8000 >>> j)) symbols.push(i * 16 + j);
  }
  if (symbols.length === 0) throw bad('a block uses no byte values');
  return symbols;
}

interface Table {
  minLen: number;
  limit: Int32Array;
  base: Int32Array;
  perm: Int32Array;
}

/** Reads the selectors and code lengths; returns the table for each group of 50 symbols. */
function huffmanTables(r: BitReader, alphaSize: number): Table[] {
  const nGroups = r.bits(3);
  const nSelectors = r.bits(15);
  if (nGroups < 2 || nGroups > MAX_GROUPS || nSelectors < 1) throw bad('its Huffman groups are invalid');
  const order = Array.from({ length: nGroups }, (_, i) => i);
  const selectors: number[] = [];
  for (let i = 0; i < nSelectors; i++) {
    let j = 0;
    while (r.bit() === 1) if (++j >= nGroups) throw bad('a selector is out of range');
    const g = order[j]!;
    order.splice(j, 1);
    order.unshift(g);
    // bzip2 1.0.8 reads but ignores selectors beyond its maximum.
    if (i < MAX_SELECTORS) selectors.push(g);
  }
  const groups: Table[] = [];
  for (let t = 0; t < nGroups; t++) {
    const lengths = new Uint8Array(alphaSize);
    let len = r.bits(5);
    for (let s = 0; s < alphaSize; s++) {
      for (;;) {
        if (len < 1 || len > MAX_CODE_LENGTH) throw bad('a code length is out of range');
        if (r.bit() === 0) break;
        len += r.bit() === 0 ? 1 : -1;
      }
      lengths[s] = len;
    }
    groups.push(decodeTable(lengths));
  }
  return selectors.map((g) => groups[g]!);
}

/** Canonical Huffman decoding table, as bzip2's BZ2_hbCreateDecodeTables builds it. */
function decodeTable(lengths: Uint8Array): Table {
  let minLen = 32;
  let maxLen = 0;
  for (const l of lengths) {
    minLen = Math.min(minLen, l);
    maxLen = Math.max(maxLen, l);
  }
  const perm = new Int32Array(lengths.length);
  let pp = 0;
  for (let l = minLen; l <= maxLen; l++)
    for (let s = 0; s < lengths.length; s++) if (lengths[s] === l) perm[pp++] = s;
  const count = new Int32Array(MAX_CODE_LENGTH + 2);
  for (const l of lengths) count[l + 1]!++;
  for (let i = 1; i < count.length; i++) count[i]! += count[i - 1]!;
  const limit = new Int32Array(MAX_CODE_LENGTH + 1).fill(-1);
  const base = new Int32Array(MAX_CODE_LENGTH + 2);
  let vec = 0;
  for (let l = minLen; l <= maxLen; l++) {
    vec += count[l + 1]! - count[l]!;
    limit[l] = vec - 1;
    vec <<= 1;
  }
  for (let l = minLen + 1; l <= maxLen; l++) base[l] = ((limit[l - 1]! + 1) << 1) - count[l]!;
  base[minLen] = 0; // limit/base for the shortest length: codes start at 0
  return { minLen, limit, base, perm };
}

/**
 * Huffman symbols -> the block's bytes in `tt` (low 8 bits), undoing RUNA/RUNB runs and the
 * move-to-front; counts each byte value. Returns the block's length.
 */
function mtfDecode(
  r: BitReader,
  tables: Table[],
  symbols: number[],
  tt: Uint32Array,
  counts: Uint32Array,
): number {
  const eob = symbols.length + 1;
  const mtf = Array.from({ length: symbols.length }, (_, i) => i);
  let n = 0;
  let group = -1;
  let left = 0;
  let table: Table | undefined;
  let runLength = 0;
  let runWeight = 1;
  for (;;) {
    if (left === 0) {
      table = tables[++group];
      if (table === undefined) throw bad('it has more symbols than selectors');
      left = GROUP_SIZE;
    }
    left--;
    const sym = nextSymbol(r, table!);
    if (sym <= 1) {
      // RUNA (0) adds 1 x weight, RUNB (1) adds 2 x weight; the weight doubles each time.
      runLength += (sym + 1) * runWeight;
      runWeight *= 2;
      if (runLength > tt.length) throw bad('a run is longer than the block');
      continue;
    }
    if (runLength > 0) {
      if (n + runLength > tt.length) throw bad('the block is longer than its size');
      const b = symbols[mtf[0]!]!;
      tt.fill(b, n, n + runLength);
      counts[b]! += runLength;
      n += runLength;
      runLength = 0;
      runWeight = 1;
    }
    if (sym === eob) return n;
    const idx = sym - 1;
    if (idx >= mtf.length) throw bad('a move-to-front index is out of range');
    const v = mtf[idx]!;
    mtf.copyWithin(1, 0, idx);
    mtf[0] = v;
    if (n >= tt.length) throw bad('the block is longer than its size');
    const b = symbols[v]!;
    tt[n++] = b;
    counts[b]!++;
  }
}

function nextSymbol(r: BitReader, t: Table): number {
  let len = t.minLen;
  let code = r.bits(len);
  while (len <= MAX_CODE_LENGTH) {
    if (code <= t.limit[len]!) {
      const s = t.perm[code - t.base[len]!];
      if (s === undefined) throw bad('a Huffman code is invalid');
      return s;
    }
    len++;
    code = (code << 1) | r.bit();
  }
  throw bad('a Huffman code is invalid');
}
