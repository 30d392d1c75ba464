// The budget shared by every compressor of a run. Per-byte work that can be split (zstd frames) is
// handed to libuv's thread pool in pieces; this pool only decides how many large pieces may exist at
// once, so memory stays bounded however many NARs upload side by side and however slow the network.
//
// A slot stands for one large frame: its input while it fills and compresses, then its output until
// it is handed downstream. There are as many slots as threads: filling a frame from the page cache
// takes about a tenth of the time compressing it does, and each extra slot cost about 50 MB of peak
// RSS on a 1 GiB NAR with 16 MiB frames (input, output, zstd's context and the garbage they leave;
// less since frames are 4 MiB). Waiting for a slot
// never deadlocks: a holder only waits for its own NAR reader (which waits on nothing but the disk),
// its own compression jobs, or its own consumer, never for another slot.
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

/** One frame's place in memory: its input buffer (reused from frame to frame) and the way back. */
export interface FrameSlot {
  buffer: Buffer;
  release(): void;
}

export class ComputePool {
  /** How many large frames may exist (and so compress) at once: one per core by default. */
  readonly threads: number;
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

  /**
   * @param budget the run's memory budget (src/memory-budget.ts): the frames' buffers are set aside
   *   from it once, here, and a budget too small for `threads` frames gets fewer (at least one; the
   *   config's minimum budget leaves room for it).
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
    if (budget !== undefined)
      threads = Math.max(1, budget.reserve(threads * frameBytes, frameBytes) / frameBytes);
    this.threads = threads;
    this.slots = new Semaphore(threads);
    this.buffers = new ChunkPool(frameBytes, threads, true);
    this.smallTurns = new Semaphore(threads);
  }

  /**
   * Resolves once a small frame may compress, with the function that ends its turn (call it when
   * the frame's compression has settled; later calls do nothing).
   */
  async smallFrameTurn(): Promise<() => void> {
    await this.smallTurns.acquire();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.smallTurns.release();
    };
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
