// Buffers that their last reader hands back, so a NAR's bytes pass through the same few megabytes
// over and over instead of fresh memory per read. Why it matters: every fresh buffer is memory
// outside V8's heap, and V8 starts a full collection each time some tens of megabytes of it have
// been allocated. A 1.4 GB closure made about a hundred full collections, whose marking cost more
// CPU than hashing the NARs (docs/architecture.md, "Performance").
//
// Two kinds of loan: take() lends a whole buffer (a file read); a Slab lends many slices of one
// buffer (the NAR encoder's headers and small files, zstd's output), which comes back once it is
// sealed and every slice has been given back.
//
// The rule that keeps this safe: only a chunk's last reader gives it back, once it has copied or
// written the bytes and keeps no reference: the zstd frame compressor for the NAR's chunks (it
// copies them into its frame buffer), the object store for the compressed ones (after its write
// returns, or after copying a single PUT's body). Any other consumer simply drops chunks, which the
// garbage collector then frees as before.

/** What one pooled buffer has lent: how many views are still out, and whether more may be cut. */
interface Loan {
  pool: ChunkPool;
  whole: Buffer;
  out: number;
  sealed: boolean;
}

/** Every view lent and not yet given back, to its loan: one registry, so one giveBack() for all pools. */
const loans = new WeakMap<Buffer, Loan>();

export class ChunkPool {
  readonly #free: Buffer[] = [];

  constructor(
    readonly chunkBytes: number,
    /** Free buffers kept beyond this many are left to the garbage collector. */
    private readonly keep: number,
  ) {}

  /** A buffer of `length` bytes (at most chunkBytes), whose contents are undefined. */
  take(length: number): Buffer {
    if (length > this.chunkBytes) throw new RangeError(`${length} bytes is more than one chunk`);
    const whole = this.#whole();
    const view = length === this.chunkBytes ? whole : whole.subarray(0, length);
    loans.set(view, { pool: this, whole, out: 1, sealed: true });
    return view;
  }

  /** A whole buffer to lend in slices (see Slab). */
  slab(): Slab {
    return new Slab(this, this.#whole());
  }

  /** @internal A loan is over: keep its buffer for the next take(), up to `keep` of them. */
  recycle(whole: Buffer): void {
    if (this.#free.length < this.keep) this.#free.push(whole);
  }

  #whole(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.chunkBytes);
  }
}

/**
 * One pooled buffer lent in slices. The owner writes into `buffer`, lends the written ranges with
 * lend() (never writing them again), and seals the slab when it moves to the next one; the buffer
 * returns to the pool once it is sealed and every slice has been given back.
 */
export class Slab {
  readonly #loan: Loan;

  constructor(
    pool: ChunkPool,
    readonly buffer: Buffer,
  ) {
    this.#loan = { pool, whole: buffer, out: 0, sealed: false };
  }

  lend(start: number, end: number): Buffer {
    if (this.#loan.sealed) throw new Error('a sealed slab lends nothing more');
    const view = this.buffer.subarray(start, end);
    this.#loan.out++;
    loans.set(view, this.#loan);
    return view;
  }

  /**
   * Lends a view someone else cut from this slab's memory (node:zlib slices its output buffer); a
   * view of other memory is returned as it is, unregistered.
   */
  adopt(view: Buffer): Buffer {
    if (this.#loan.sealed) throw new Error('a sealed slab lends nothing more');
    if (view.buffer !== this.buffer.buffer || loans.has(view)) return view;
    this.#loan.out++;
    loans.set(view, this.#loan);
    return view;
  }

  /** No more slices will be cut (later calls do nothing). */
  seal(): void {
    if (this.#loan.sealed) return;
    this.#loan.sealed = true;
    if (this.#loan.out === 0) this.#loan.pool.recycle(this.#loan.whole);
  }
}

/**
 * The caller has copied what it needed from `view` and holds no reference: its memory may be
 * reused. A view no pool lent (or a sub-view of one), or one already given back, is ignored.
 */
export function giveBack(view: Buffer): void {
  const loan = loans.get(view);
  if (loan === undefined) return;
  loans.delete(view);
  loan.out--;
  if (loan.sealed && loan.out === 0) loan.pool.recycle(loan.whole);
}

/** Large-file reads of the NAR reader (1 MiB each), given back by the zstd frame compressor. */
export const READ_CHUNKS = new ChunkPool(1024 * 1024, 16);

/**
 * The NAR encoder's slabs (headers, padding and small files, 256 KiB each), given back slice by
 * slice by the zstd frame compressor.
 */
export const NAR_SLABS = new ChunkPool(256 * 1024, 16);
