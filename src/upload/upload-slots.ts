// A counting semaphore, first come first served. The closure uploader holds one while a path's
// NAR is read, compressed and stored, and gives it back before waiting for the path's references
// to be committed: a slot held through that wait did no work, and with many tiny paths most of a
// path's time was that wait plus the narinfo's round trip. First come first served keeps the
// order in which tasks asked (largest NAR first, see upload-closure.ts). The compute pool counts
// its frame slots with one too.
export class UploadSlots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(size: number) {
    this.free = Math.max(1, size);
  }

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.free++;
  }

  /** One task's hold on at most one slot: take() and give() may be called again and again. */
  holder(): { take: () => Promise<void>; give: () => void } {
    let holding = false;
    return {
      take: async () => {
        if (!holding) await this.acquire();
        holding = true;
      },
      give: () => {
        if (holding) this.release();
        holding = false;
      },
    };
  }
}
