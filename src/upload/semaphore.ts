// A counting semaphore with weights, first come first served among the requests that fit. The
// uploader counts NAR upload slots, narinfo commit slots and bytes of bodies the object store holds
// in memory with it (upload/nar-turns.ts); the compute pool counts zstd frames. First come first
// served keeps the order in which tasks asked (largest NAR first, see upload-closure.ts).
export class Semaphore {
  private free: number;
  private readonly size: number;
  private readonly waiting: Array<{ n: number; ahead: boolean; resolve: () => void }> = [];

  constructor(size: number) {
    this.size = Math.max(1, size);
    this.free = this.size;
  }

  /**
   * Takes `n` units (at most the whole size: a larger request waits for all of them). A request
   * that fits goes ahead of heavier ones waiting for more: a small NAR never queues behind a large
   * one for memory. With unit requests this is plain first come first served.
   * @param ahead wait in front of every request not made `ahead` (first come first served among
   *   those that are): for a task that already waited its turn once and only comes back for it
   */
  async acquire(n = 1, ahead = false): Promise<void> {
    if (this.tryAcquire(n)) return;
    const entry = { n: Math.min(n, this.size), ahead, resolve: () => {} };
    const waited = new Promise<void>((resolve) => (entry.resolve = resolve));
    const at = ahead ? this.waiting.findIndex((w) => !w.ahead) : -1;
    if (at < 0) this.waiting.push(entry);
    else this.waiting.splice(at, 0, entry);
    await waited;
  }

  /** Takes `n` units now if they are free; never waits. */
  tryAcquire(n = 1): boolean {
    const want = Math.min(n, this.size);
    if (this.free < want) return false;
    this.free -= want;
    return true;
  }

  release(n = 1): void {
    this.free += Math.min(n, this.size);
    // In order, each waiter that fits now; one that does not keeps its place.
    for (let i = 0; i < this.waiting.length && this.free > 0;) {
      const w = this.waiting[i]!;
      if (w.n > this.free) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.free -= w.n;
      w.resolve();
    }
  }

  /** Runs `fn` holding `n` units, given back however it ends. */
  async use<T>(fn: () => Promise<T>, n = 1): Promise<T> {
    await this.acquire(n);
    try {
      return await fn();
    } finally {
      this.release(n);
    }
  }
}
