// A counting semaphore, first come first served. The closure uploader holds one while a path's
// NAR is read, compressed and stored, and gives it back before waiting for the path's references
// to be committed: a slot held through that wait did no work, and with many tiny paths most of a
// path's time was that wait plus the narinfo's round trip. First come first served keeps the
// order in which tasks asked (largest NAR first, see upload-closure.ts). The compute pool counts
// its frame slots with one too, and the uploader weighs S3 bodies by the memory they may hold.
export interface SlotHolder {
  take(): Promise<void>;
  /** Takes the units now if they are free (or already held); never waits. */
  tryTake(): boolean;
  give(): void;
}

export class UploadSlots {
  private free: number;
  private readonly size: number;
  private readonly waiting: Array<{ n: number; resolve: () => void }> = [];

  constructor(size: number) {
    this.size = Math.max(1, size);
    this.free = this.size;
  }

  /**
   * Takes `n` units (at most the whole size: a larger request waits for all of them). A request
   * that fits goes ahead of heavier ones waiting for more: a small NAR never queues behind a large
   * one for memory. With unit requests this is plain first come first served.
   */
  async acquire(n = 1): Promise<void> {
    if (this.tryAcquire(n)) return;
    await new Promise<void>((resolve) => this.waiting.push({ n: Math.min(n, this.size), resolve }));
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

  /** One task's hold on `n` units at most once: take() and give() may be called again and again. */
  holder(n = 1): SlotHolder {
    let holding = false;
    return {
      tryTake: () => (holding ||= this.tryAcquire(n)),
      take: async () => {
        if (!holding) await this.acquire(n);
        holding = true;
      },
      give: () => {
        if (holding) this.release(n);
        holding = false;
      },
    };
  }
}
