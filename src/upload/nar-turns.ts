// Who may stream a NAR right now: the one place that takes and gives back a NAR's upload slot and
// its share of the body-memory budget. A path holds its turn only while its NAR is read,
// compressed and stored, never while it waits for its references (path-task.ts), so every turn
// ends on its own and the reference wait cannot deadlock.
import type { ObjectStore } from '../storage/object-store.js';
import { Semaphore } from './semaphore.js';
import { narSizeHint } from './upload-path.js';

/**
 * Bytes of NAR bodies the store may hold in memory at once, over every upload in flight: with the
 * largest NARs starting first, every upload thread would otherwise hold a large body at the same
 * time (twelve threads to S3 held 264-284 MB of ArrayBuffers on the bench closure). NARs smaller
 * than `exempt` weigh nothing: they are many, each holds little, and must not queue behind large
 * ones. A body larger than the whole budget waits for all of it and goes alone.
 */
export interface BodyMemory {
  budget: number;
  exempt: number;
}

export const DEFAULT_BODY_MEMORY: BodyMemory = { budget: 96 * 1024 * 1024, exempt: 1024 * 1024 };

export class NarTurns {
  private readonly slots: Semaphore;
  private readonly memory: Semaphore;

  constructor(
    threads: number,
    private readonly store: Pick<ObjectStore, 'bufferedPerUpload'>,
    private readonly bodyMemory: BodyMemory = DEFAULT_BODY_MEMORY,
  ) {
    this.slots = new Semaphore(threads);
    this.memory = new Semaphore(bodyMemory.budget);
  }

  /**
   * Runs `stream` holding an upload slot and the bytes the store buffers for this NAR's body. The
   * slot comes first, so NARs start in the order they asked (largest first); a NAR whose memory is
   * not free gives its slot back while it waits for the memory, so it never holds up smaller NARs.
   * No deadlock: whoever holds memory or a slot is streaming its NAR, which ends.
   */
  async with<T>(narSize: number, stream: () => Promise<T>): Promise<T> {
    const weight = this.weightOf(narSize);
    await this.slots.acquire();
    if (weight > 0 && !this.memory.tryAcquire(weight)) {
      this.slots.release();
      await this.memory.acquire(weight);
      await this.slots.acquire();
    }
    try {
      return await stream();
    } finally {
      this.slots.release();
      if (weight > 0) this.memory.release(weight);
    }
  }

  private weightOf(narSize: number): number {
    if (narSize < this.bodyMemory.exempt) return 0;
    return this.store.bufferedPerUpload?.(narSizeHint(narSize)) ?? 0;
  }
}
