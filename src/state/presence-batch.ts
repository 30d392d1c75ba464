// Presence rows of one upload run, written in batches: each narinfo commit adds a row, and a
// SQLite transaction per row (a WAL append and a commit each) was a visible share of uploading
// 1,000 tiny paths. Rows still follow their narinfos: a row is queued only once its narinfo is
// stored, and written at the next turn of the event loop together with whatever else committed
// meanwhile. A crash before the write loses rows, never adds one: the next run asks the bucket
// about those paths again.
import type { PresenceCache, PresenceEntry } from './presence.js';

export class PresenceBatch {
  private pending: PresenceEntry[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  /** A write that failed in the background, rethrown by flush(): never an uncaught exception. */
  private failure: Error | undefined;

  constructor(private readonly cache: PresenceCache) {}

  add(entry: PresenceEntry): void {
    this.pending.push(entry);
    this.scheduled ??= setImmediate(() => {
      try {
        this.write();
      } catch (err) {
        this.failure ??= err instanceof Error ? err : new Error(String(err));
      }
    });
  }

  /** Writes every queued row now, in one transaction; throws if any write of this batch failed. */
  flush(): void {
    this.write();
    if (this.failure !== undefined) throw this.failure;
  }

  private write(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.pending.length === 0) return;
    const rows = this.pending;
    this.pending = [];
    this.cache.addMany(rows);
  }
}
