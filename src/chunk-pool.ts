// Read buffers that their last reader hands back, so a NAR's large files are read into the same few
// megabytes over and over instead of a fresh buffer per read. Why it matters: every fresh buffer is
// memory outside V8's heap, and V8 starts a full collection each time some tens of megabytes of it
// have been allocated. A 1.4 GB closure made about a hundred full collections, whose marking cost
// more CPU than hashing the NARs (docs/architecture.md, "Performance").
//
// The rule that keeps this safe: only the reader that copies a chunk's bytes elsewhere and keeps no
// reference gives it back (the zstd frame compressor, which copies into its frame buffer). Any other
// consumer simply drops chunks, which the garbage collector then frees as before.

export class ChunkPool {
  /** Buffers handed out and not yet given back, each view to the buffer it was cut from. */
  readonly #out = new WeakMap<Buffer, Buffer>();
  readonly #free: Buffer[] = [];

  constructor(
    readonly chunkBytes: number,
    /** Free buffers kept beyond this many are left to the garbage collector. */
    private readonly keep: number,
  ) {}

  /** A buffer of `length` bytes (at most chunkBytes), whose contents are undefined. */
  take(length: number): Buffer {
    if (length > this.chunkBytes) throw new RangeError(`${length} bytes is more than one chunk`);
    const whole = this.#free.pop() ?? Buffer.allocUnsafeSlow(this.chunkBytes);
    const view = length === this.chunkBytes ? whole : whole.subarray(0, length);
    this.#out.set(view, whole);
    return view;
  }

  /**
   * The caller has copied what it needed and holds no reference: the memory may be reused at once.
   * A buffer this pool did not hand out, or one already given back, is ignored.
   */
  giveBack(view: Buffer): void {
    const whole = this.#out.get(view);
    if (whole === undefined) return;
    this.#out.delete(view);
    if (this.#free.length < this.keep) this.#free.push(whole);
  }
}

/** Large-file reads of the NAR reader (1 MiB each), given back by the zstd frame compressor. */
export const READ_CHUNKS = new ChunkPool(1024 * 1024, 16);
