// Reused memory, so a NAR's bytes pass through the same few megabytes over and over instead of
// fresh memory per read. Why it matters: every fresh buffer is memory outside V8's heap, and V8
// starts a full collection each time some tens of megabytes of it have been allocated. A 1.4 GB
// closure made about a hundred full collections, whose marking cost more CPU than hashing the NARs
// (docs/architecture.md, "Performance").
//
// What the pools keep is set aside from the run's memory budget (src/memory-budget.ts) when they
// are made, so `--status` counts it.
//
// Two kinds of owner:
// - ChunkPool: a free list of equal buffers that one module takes and recycles itself (the
//   compute pool's frame buffers, the zstd compressor's small-frame buffers). Nothing is lent.
// - NarMemory: the memory a NAR's reader lends downstream, the one memory that crosses modules.
//   The file reader and the NAR encoder take buffers from it (read() and slab()); the compressor
//   that copies its input (zstd) reports each chunk consumed, and the upload path wires that report
//   to NarMemory.giveBack, the one way back. The zstd compressor's output is lent the same way
//   (output()), and the object store reports each compressed chunk once written or copied
//   (PutOptions.consumed), wired by the upload path to the same giveBack. A chunk nobody reports
//   is left to the garbage collector, which is always safe.

import type { MemoryBudget } from './memory-budget.js';

/** Equal buffers of `chunkBytes`, taken and recycled by the same owner. */
export class ChunkPool {
  readonly #free: Buffer[] = [];

  constructor(
    readonly chunkBytes: number,
    /** Free buffers kept beyond this many are dropped. */
    private readonly keep: number,
    /**
     * Free a dropped buffer's memory at once (see release()), instead of leaving it to the garbage
     * collector. Only for buffers that reach no socket: a write the kernel has not taken yet may
     * still read a buffer after its request settled, and freed memory must never be read.
     */
    private readonly freeDropped = false,
  ) {}

  /** A whole buffer, whose contents are undefined. */
  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.chunkBytes);
  }

  /** The owner is done with `whole` (a buffer take() returned): keep it for the next take(). */
  recycle(whole: Buffer): void {
    if (this.#free.length < this.keep) this.#free.push(whole);
    else if (this.freeDropped) release(whole);
  }

  /** Free buffers kept now. */
  get kept(): number {
    return this.#free.length;
  }

  /** Drops every free buffer (an idle process gives the memory back). */
  drain(): void {
    if (this.freeDropped) for (const whole of this.#free) release(whole);
    this.#free.length = 0;
  }
}

/**
 * Gives a dropped buffer's memory back to the system now, by detaching its ArrayBuffer
 * (`transfer(0)`): left to the garbage collector, a dropped 4.5 MiB output slab stayed resident
 * until the next full collection, and on the bench closure to S3 five of them at once were a tenth
 * of the peak RSS (docs/architecture.md, "A default budget per core, and dropped buffers freed at
 * once"). Only a buffer that owns its whole ArrayBuffer (as take() makes them); every view of it
 * reads as empty afterwards.
 */
function release(whole: Buffer): void {
  const ab = whole.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };
  if (whole.byteOffset !== 0 || ab.byteLength !== whole.length || ab.transfer === undefined) return;
  ab.transfer(0);
}

/** What one pooled buffer has lent: how many views are still out, and whether more may be cut. */
interface Loan {
  pool: ChunkPool;
  whole: Buffer;
  out: number;
  sealed: boolean;
}

/** Large-file reads (1 MiB each) and the NAR encoder's slabs (256 KiB each), and how many of each are kept. */
const READ_BYTES = 1024 * 1024;
const SLAB_BYTES = 256 * 1024;
const KEPT = 16;
/**
 * zstd's compressed output (upload/zstd-contexts.ts): room for a whole 4 MiB frame's output at its
 * worst (incompressible input, stepOutputBound in upload/zstd-output.ts), since a frame compresses
 * in one step, and how many are kept (a frame of text leaves most of its slab for the next frame).
 */
export const OUTPUT_BYTES = 4.5 * 1024 * 1024;
const OUTPUTS_KEPT = 4;

export class NarMemory {
  readonly readBytes = READ_BYTES;
  readonly #reads: ChunkPool;
  readonly #slabs: ChunkPool;
  readonly #outputs: ChunkPool;
  /** Every view lent and not yet given back, to its loan. */
  readonly #loans = new WeakMap<Buffer, Loan>();

  /**
   * @param budget the pools' kept buffers are set aside from it: reads and slabs as many as fit in
   *   `most` bytes (up to KEPT of each), compressor outputs as many again (up to OUTPUTS_KEPT);
   *   buffers lent beyond those are fresh and left to the garbage collector.
   */
  constructor(budget?: MemoryBudget, most = Infinity) {
    const want = Math.min(most, KEPT * (READ_BYTES + SLAB_BYTES));
    const granted = budget === undefined ? want : budget.reserve(want, READ_BYTES + SLAB_BYTES);
    const kept = Math.floor(granted / (READ_BYTES + SLAB_BYTES));
    this.#reads = new ChunkPool(READ_BYTES, kept, true);
    this.#slabs = new ChunkPool(SLAB_BYTES, kept, true);
    // The compressor's output is the other half of what a NAR passes through; same share again.
    const outputs = Math.min(most, OUTPUTS_KEPT * OUTPUT_BYTES);
    const grantedOut = budget === undefined ? outputs : budget.reserve(outputs, OUTPUT_BYTES);
    this.#outputs = new ChunkPool(OUTPUT_BYTES, Math.floor(grantedOut / OUTPUT_BYTES), true);
  }

  /** Drops the kept buffers (an idle daemon gives their memory back); later reads refill them. */
  drain(): void {
    this.#reads.drain();
    this.#slabs.drain();
    this.#outputs.drain();
  }

  /** A read buffer of `length` bytes (at most readBytes), whose contents are undefined. */
  read(length: number): Buffer {
    if (length > READ_BYTES) throw new RangeError(`${length} bytes is more than one read buffer`);
    const whole = this.#reads.take();
    const view = length === READ_BYTES ? whole : whole.subarray(0, length);
    this.#loans.set(view, { pool: this.#reads, whole, out: 1, sealed: true });
    return view;
  }

  /** A buffer to lend in slices (see Slab). */
  slab(): Slab {
    return this.#slabOf(this.#slabs);
  }

  /**
   * A slab of OUTPUT_BYTES for a compressor's output, lent downstream in slices: the object store,
   * the output's last reader, gives each back once written or copied (PutOptions.consumed). An arrow
   * function, so it can be handed on as the compressor's source of output memory.
   */
  readonly output = (): Slab => this.#slabOf(this.#outputs);

  #slabOf(pool: ChunkPool): Slab {
    const whole = pool.take();
    const loan: Loan = { pool, whole, out: 0, sealed: false };
    return new Slab(whole, loan, (view) => this.#loans.set(view, loan));
  }

  /**
   * The consumer has copied what it needed from `view` and holds no reference: its memory may be
   * reused. A view this memory did not lend (or a sub-view of one), or one already given back, is
   * ignored. An arrow function, so it can be handed on as a callback.
   */
  readonly giveBack = (view: Buffer): void => {
    const loan = this.#loans.get(view);
    if (loan === undefined) return;
    this.#loans.delete(view);
    loan.out--;
    if (loan.sealed && loan.out === 0) loan.pool.recycle(loan.whole);
  };
}

/**
 * One pooled buffer lent in slices. The owner writes into `buffer`, lends the written ranges with
 * lend() (never writing them again), and seals the slab when it moves to the next one; the buffer
 * returns to its pool once it is sealed and every slice has been given back.
 */
export class Slab {
  constructor(
    readonly buffer: Buffer,
    private readonly loan: Loan,
    private readonly register: (view: Buffer) => void,
  ) {}

  lend(start: number, end: number): Buffer {
    if (this.loan.sealed) throw new Error('a sealed slab lends nothing more');
    const view = this.buffer.subarray(start, end);
    this.loan.out++;
    this.register(view);
    return view;
  }

  /** No more slices will be cut (later calls do nothing). */
  seal(): void {
    if (this.loan.sealed) return;
    this.loan.sealed = true;
    if (this.loan.out === 0) this.loan.pool.recycle(this.loan.whole);
  }
}
