// Who may stream a NAR right now: the one place that takes and gives back a NAR's upload slot and
// its share of the body-memory budget. A path holds its turn only while its NAR is read,
// compressed and stored, never while it waits for its references (path-task.ts), so every turn
// ends on its own and the reference wait cannot deadlock.
import { MemoryBudget, defaultMemoryBudgetBytes } from '../memory-budget.js';
import type { ObjectStore } from '../storage/object-store.js';
import { Semaphore } from './semaphore.js';
import { narSizeHint } from './upload-path.js';

/**
 * Bytes of NAR bodies the store may hold in memory at once, over every upload in flight, taken from
 * the run's one memory budget (src/memory-budget.ts): with the largest NARs starting first, every
 * upload thread would otherwise hold a large body at the same time (twelve threads to S3 held
 * 264-284 MB of ArrayBuffers on the bench closure). NARs smaller than `exempt` weigh nothing: they
 * are many, each holds little, and must not queue behind large ones. A body larger than what the
 * budget has for bodies waits for all of it and goes alone.
 */
export interface BodyMemory {
  budget: MemoryBudget;
  exempt: number;
}

/** NARs under 1 MiB go in one PUT of at most their size: they never wait for memory. */
export const BODY_EXEMPT_BYTES = 1024 * 1024;

function defaultBodyMemory(): BodyMemory {
  return { budget: new MemoryBudget(defaultMemoryBudgetBytes()), exempt: BODY_EXEMPT_BYTES };
}

export class NarTurns {
  private readonly slots: Semaphore;
  private readonly memory: MemoryBudget;

  constructor(
    threads: number,
    private readonly store: Pick<ObjectStore, 'bufferedPerUpload'>,
    private readonly bodyMemory: BodyMemory = defaultBodyMemory(),
  ) {
    this.slots = new Semaphore(threads);
    this.memory = bodyMemory.budget;
  }

  /**
   * Runs `stream` holding an upload slot and the bytes the store buffers for this NAR's body. The
   * slot comes first, so NARs start in the order they asked (largest first); a NAR whose memory is
   * not free gives its slot back while it waits for the memory, so it never holds up smaller NARs,
   * and once it has the memory it takes the next free slot.
   * No deadlock: whoever holds memory or a slot is streaming its NAR, which ends.
   */
  async with<T>(narSize: number, stream: () => Promise<T>): Promise<T> {
    const weight = this.weightOf(narSize);
    await this.slots.acquire();
    let taken = weight > 0 ? this.memory.tryTake(weight) : 0;
    if (taken === undefined) {
      this.slots.release();
      taken = await this.memory.take(weight);
      // Ahead of the NARs that have not had a turn yet: at the back of the queue it waited for every
      // small NAR of the closure (on the wide-area bench, five 4 MiB NARs that most of the closure
      // refers to ended last, and with them nearly every narinfo).
      await this.slots.acquire(1, true);
    }
    try {
      return await stream();
    } finally {
      this.slots.release();
      this.memory.give(taken);
    }
  }

  private weightOf(narSize: number): number {
    if (narSize < this.bodyMemory.exempt) return 0;
    return this.store.bufferedPerUpload?.(narSizeHint(narSize)) ?? 0;
  }
}
