// The one budget for the memory loft buffers on purpose: zstd frame buffers, NAR read buffers, S3
// part buffers. It is set from the config (`memory_budget` in [loft]) and is the single count that
// `--status` reports. Each module that holds large buffers takes its bytes here first and gives them
// back itself, so the sum lent never passes the total:
//
// - fixed pools reserve their capacity once, when they are made (the compute pool's frames, the
//   NAR reader's pooled reads), with reserve(): a pool too large for what is left gets less;
// - a NAR body an object store holds while sending it (S3 parts) takes its weight for the time of
//   its upload with take()/give() (upload/nar-turns.ts), waiting while the budget is spent.
//
// Reservations come first and are never waited for, so a body waiting for memory never holds
// something a frame needs: the frames' share was set aside when the pool was made.

import { availableParallelism } from 'node:os';

const MiB = 1024 * 1024;

/**
 * The default `memory_budget`: 48 MiB, and 8 MiB per core up to 16 cores (64 MiB on 2 cores, at
 * most 176 MiB). Per core because the compute pool gives each core a 4 MiB zstd frame but takes at
 * most half the budget; the rest holds the NAR reader's pools and one S3 upload's four 8 MiB parts
 * beside small bodies. Measured in docs/benchmarks.md ("twelfth round"): on 2 cores the bench
 * closure to S3 peaked at 207-244 MB with a fixed 96 MiB, which let two large bodies stream at once
 * (what the budget does not count, zstd's output slabs and small bodies, grew with them), and at
 * 176-188 MB with 64 MiB once dropped buffers were freed at once (src/chunk-pool.ts), in the same
 * wall time.
 */
export function defaultMemoryBudgetBytes(cores: number = availableParallelism()): number {
  return (48 + 8 * Math.min(Math.max(1, cores), 16)) * MiB;
}

export interface MemoryBudgetUse {
  /** Bytes the budget may lend. */
  total: number;
  /** Bytes lent now (reservations and bodies). */
  inUse: number;
  /** The most ever lent at once. */
  peak: number;
}

export class MemoryBudget {
  #inUse = 0;
  #peak = 0;
  /** Bytes set aside by reserve(), for good: a body never gets more than the rest. */
  #reserved = 0;
  readonly #waiting: Array<{ n: number; resolve: () => void }> = [];

  constructor(readonly total: number) {
    if (!Number.isSafeInteger(total) || total <= 0) {
      throw new RangeError(`a memory budget must be a positive whole number of bytes, not ${total}`);
    }
  }

  get inUse(): number {
    return this.#inUse;
  }

  get peak(): number {
    return this.#peak;
  }

  /** Bytes not lent. */
  get free(): number {
    return this.total - this.#inUse;
  }

  use(): MemoryBudgetUse {
    return { total: this.total, inUse: this.#inUse, peak: this.#peak };
  }

  /**
   * Sets aside up to `wanted` bytes at once, in whole `unit`s, for a pool that lives as long as the
   * budget; returns the bytes granted (possibly 0). Never waits: a pool is made before any body
   * takes memory, and one that gets less simply holds fewer buffers.
   */
  reserve(wanted: number, unit = 1): number {
    const granted = Math.min(Math.floor(wanted / unit), Math.floor(this.free / unit)) * unit;
    if (granted > 0) this.#lend(granted);
    this.#reserved += granted;
    return granted;
  }

  /**
   * Takes `n` bytes now if they are free. A request larger than the budget less its reservations
   * asks for all of that (it goes alone); the caller gives back what this returns.
   */
  tryTake(n: number): number | undefined {
    const want = this.#fit(n);
    if (want > this.free) return undefined;
    this.#lend(want);
    return want;
  }

  /**
   * Takes `n` bytes, waiting until they are free; resolves with the bytes taken (at most the
   * total), to be given back with give(). A request that fits goes ahead of heavier ones waiting,
   * so a small body never queues behind a large one; among those that fit, first come first served.
   */
  async take(n: number): Promise<number> {
    const want = this.#fit(n);
    if (want <= this.free && this.#waiting.length === 0) {
      this.#lend(want);
      return want;
    }
    await new Promise<void>((resolve) => {
      this.#waiting.push({ n: want, resolve });
      this.#serve();
    });
    return want;
  }

  /** Gives back `n` bytes that take(), tryTake() or reserve() returned. */
  give(n: number): void {
    if (n <= 0) return;
    if (n > this.#inUse) throw new RangeError(`${n} bytes given back, but only ${this.#inUse} are lent`);
    this.#inUse -= n;
    this.#serve();
  }

  /** In order, each waiter that fits now; one that does not keeps its place. */
  #serve(): void {
    for (let i = 0; i < this.#waiting.length && this.free > 0;) {
      const w = this.#waiting[i]!;
      if (w.n > this.free) {
        i++;
        continue;
      }
      this.#waiting.splice(i, 1);
      this.#lend(w.n);
      w.resolve();
    }
  }

  #fit(n: number): number {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`cannot take ${n} bytes`);
    return Math.min(n, this.total - this.#reserved);
  }

  #lend(n: number): void {
    this.#inUse += n;
    if (this.#inUse > this.#peak) this.#peak = this.#inUse;
  }
}
