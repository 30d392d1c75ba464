// The budget shared by every compressor of a run. Per-byte work that can be split (zstd frames) is
// handed to libuv's thread pool in pieces; this pool only decides how many large pieces may exist at
// once, so memory stays bounded however many NARs upload side by side and however slow the network.
//
// A slot stands for one large frame: its input while it fills and compresses, then its output until
// it is handed downstream. There is one slot more than there are threads (FILL_AHEAD), and a full
// frame compresses only in one of `threads` compression turns. Why: a slot spends part of its life
// not compressing, filling (waiting for its NAR's reads) and then waiting for its consumer to take
// the output. With one slot per thread, on the bench closure's twelve large NARs, 0.4 of the two
// slots were filling and 0.3 waiting for their consumer on average, and the two cores were 75-90 %
// busy. With the extra slot, 1.6 threads compress on average instead of 1.2-1.3 (docs/
// benchmarks.md, sixteenth round). Its cost is the frame's input (4 MiB),
// not a third zstd context: the contexts are taken with the turns. (Each extra slot cost about
// 50 MB of peak RSS on a 1 GiB NAR when frames were 16 MiB and every slot compressed.) Waiting for
// a slot or a turn never deadlocks: a holder only waits for its own NAR reader (which waits on
// nothing but the disk), a turn (held only while a full frame compresses), or its own consumer,
// never for another slot.
import { availableParallelism } from 'node:os';
import { ChunkPool } from '../chunk-pool.js';
import { ConfigError } from '../errors.js';
import type { MemoryBudget } from '../memory-budget.js';
import { Semaphore } from './semaphore.js';
import { isThreadCount, THREAD_COUNT } from '../thread-count.js';

/**
 * Input bytes per zstd frame. Nix 2.35 cuts 16 MiB frames; 4 MiB are enough here: zstd level 3 keeps
 * a window of 2 MiB (windowLog 21 for an unknown size), so a frame boundary only forgets what a 2 MiB
 * window would have forgotten soon anyway (+0.2 % compressed bytes on the bench's 2 GiB NAR, +0.06 %
 * on its closure), while the input held by the slots falls from 2 x 16 to 2 x 4 MiB: peak RSS of the
 * 2 GiB NAR 160-165 -> 114-115 MB at the same wall time (docs/architecture.md, "Bytes and memory
 * per upload").
 */
export const ZSTD_FRAME_BYTES = 4 * 1024 * 1024;

/** Slots beyond the compression threads: frames that fill while every thread compresses. */
export const FILL_AHEAD = 1;

/** One frame's place in memory: its input buffer (reused from frame to frame) and the way back. */
export interface FrameSlot {
  buffer: Buffer;
  release(): void;
}

export class ComputePool {
  /** How many large frames may compress at once: one per core by default. */
  readonly threads: number;
  /** How many large frames may exist at once: threads + FILL_AHEAD, unless the budget is short. */
  readonly frames: number;
  /** First come first served, and a released slot passes straight to the next waiter. */
  private readonly slots: Semaphore;
  /**
   * Input buffers of released slots. Reusing them keeps the footprint flat: a fresh frame buffer
   * per frame left RSS far above the live data (455 MiB against 300 on 1 GiB in one measurement).
   */
  private readonly buffers: ChunkPool;
  /**
   * Small frames (upload/zstd-frames.ts) compressing at once, one per thread. They hold no slot, and
   * each compresses on a zstd context of its own with the context's output slab pinned to it
   * (upload/zstd-contexts.ts): about 3.5 MiB of zstd's memory plus a 4.5 MiB slab. Unbounded, twelve
   * uploads of small NARs had ten contexts live at once on the bench closure, the largest share of
   * peak RSS outside the memory budget; a small frame compresses in milliseconds, so waiting for a
   * turn costs nothing the cores could have done meanwhile.
   */
  private readonly smallTurns: Semaphore;
  /** Full large frames compressing at once (one zstd context each). */
  private readonly compressTurns: Semaphore;

  /**
   * @param threads large frames compressing at once
   * @param budget the run's memory budget (src/memory-budget.ts): the frames' buffers are set aside
   *   from it once, here, and a budget too small for `threads` + FILL_AHEAD frames gets fewer, the
   *   one ahead first (at least one; the config's minimum budget leaves room for it).
   */
  constructor(
    threads: number = availableParallelism(),
    readonly frameBytes: number = ZSTD_FRAME_BYTES,
    budget?: MemoryBudget,
  ) {
    if (!isThreadCount(threads)) {
      throw new ConfigError(
        `compute threads must be a whole number from ${THREAD_COUNT.min} to ${THREAD_COUNT.max}, not ${threads}`,
      );
    }
    let frames = threads + FILL_AHEAD;
    // A short budget takes the frame that fills ahead first, then threads.
    if (budget !== undefined)
      frames = Math.max(1, budget.reserve(frames * frameBytes, frameBytes) / frameBytes);
    this.threads = Math.min(threads, frames);
    this.frames = frames;
    this.slots = new Semaphore(frames);
    this.buffers = new ChunkPool(frameBytes, frames, true);
    this.smallTurns = new Semaphore(this.threads);
    this.compressTurns = new Semaphore(this.threads);
  }

  /**
   * Resolves once a small frame may compress, with the function that ends its turn (call it when
   * the frame's compression has settled; later calls do nothing).
   */
  smallFrameTurn(): Promise<() => void> {
    return turnOf(this.smallTurns);
  }

  /**
   * Resolves once a full large frame may compress, with the function that ends its turn (call it
   * when the frame's compression has settled; later calls do nothing).
   */
  compressTurn(): Promise<() => void> {
    return turnOf(this.compressTurns);
  }

  /** Drops the free frame buffers (an idle daemon gives their memory back); slots are unchanged. */
  drain(): void {
    this.buffers.drain();
  }

  /**
   * Resolves with a slot once one is free. Its buffer may be written until release(), which must
   * come only after every job reading the buffer has finished; later calls to release() do nothing.
   */
  async acquire(): Promise<FrameSlot> {
    await this.slots.acquire();
    const buffer = this.buffers.take();
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.buffers.recycle(buffer);
      this.slots.release();
    };
    return { buffer, release };
  }
}

async function turnOf(turns: Semaphore): Promise<() => void> {
  await turns.acquire();
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    turns.release();
  };
}
