// The daemon's persistent upload queue: the `queue` table of loft's local SQLite database (the file
// the presence cache uses; see database.ts and migrations.ts, versions 3 and 6). A path stays in the table until
// its upload is done, so a crash or a restart loses nothing: the next start takes up where this one
// stopped. `loft --enqueue` (the post-build hook) writes here from another process; SQLite's WAL
// and busy timeout make that safe while the daemon reads.
//
// Two lanes (migration 6): paths a build just made (the watcher, the hook, `--enqueue`) are served
// before the backlog of the store scan, which can be every path of a large store and take hours;
// the backlog drains behind them. A backlog path that a build or hook names again moves up.
import type Database from 'better-sqlite3';
import { openStateDb } from './database.js';
import { attemptsExhausted, BACKOFF, backoffDelay, type Backoff } from '../backoff.js';

/** `new`: a build, the hook or `--enqueue` named it; `backlog`: the store scan queued it. */
export type QueueLane = 'new' | 'backlog';

export interface QueueItem {
  path: string;
  lane: QueueLane;
  /** Failures so far. */
  attempts: number;
  enqueuedAt: number;
}

export interface ParkedItem {
  path: string;
  attempts: number;
  lastError: string;
}

export interface QueueCounts {
  /** Waiting for upload, due now or later. */
  pending: number;
  /** Given up on after repeated failures. */
  parked: number;
}

/** Pending paths by lane (they add up to QueueCounts.pending). */
export interface LaneCounts {
  new: number;
  backlog: number;
}

export interface UploadQueueOptions {
  policy?: Partial<Backoff>;
  /** Clock in ms (tests move it). */
  now?: () => number;
  random?: () => number;
  /** SQLite busy timeout: how long a write waits for another process's lock. */
  busyTimeoutMs?: number;
}

/** Keys of the daemon_state table. */
export type DaemonStateKey =
  /** When the daemon last uploaded a path (ms). */
  | 'last_upload_at'
  /** The daemon's last sign of life while watching (ms): a restart looks at paths newer than it. */
  | 'last_watch_at'
  /** JSON {since, code, message} while the object store refuses the daemon, '' otherwise. */
  | 'storage_access'
  /** JSON {total, inUse, peak, pid, at}: the memory budget's use by the last process that uploaded. */
  | 'memory_budget';

export class UploadQueue {
  private readonly s: Statements;
  private readonly policy: Backoff;
  private readonly now: () => number;
  private readonly random: () => number;

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    opts: UploadQueueOptions,
  ) {
    this.s = prepare(db);
    this.policy = { ...BACKOFF.queue, ...opts.policy };
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  /** Opens (creating and migrating it when needed) the database file at `path`. */
  static open(path: string, opts: UploadQueueOptions = {}): UploadQueue {
    const db = openStateDb(
      path,
      opts.busyTimeoutMs !== undefined ? { busyTimeoutMs: opts.busyTimeoutMs } : {},
    );
    return new UploadQueue(db, path, opts);
  }

  /**
   * Adds paths to `lane`, due now. A path already queued becomes due now (a new hint, e.g. its
   * build just finished, is worth acting on at once), moves to the `new` lane when named there (never
   * back to the backlog); a parked one is taken up again with a fresh count.
   * Returns how many paths were not queued before.
   */
  enqueue(paths: readonly string[], lane: QueueLane = 'new'): number {
    const now = this.now();
    const backlog = lane === 'backlog' ? 1 : 0;
    let added = 0;
    this.db.transaction(() => {
      for (const path of new Set(paths)) {
        if (this.s.insert.run({ path, now, backlog }).changes > 0) added++;
        else this.s.wake.run({ now, path, backlog });
      }
    })();
    return added;
  }

  /**
   * Up to `limit` pending paths whose time has come, oldest due first: from the `new` lane while it
   * has any, else from the backlog. A batch never mixes the two, so a build's upload does not share
   * its batch (and the bandwidth) with scanned paths that could be large.
   */
  takeDue(limit: number): QueueItem[] {
    const now = this.now();
    const items = this.dueIn('new', now, limit);
    return items.length > 0 ? items : this.dueIn('backlog', now, limit);
  }

  private dueIn(lane: QueueLane, now: number, limit: number): QueueItem[] {
    const backlog = lane === 'backlog' ? 1 : 0;
    const rows = this.s.due.all({ now, backlog, limit }) as Array<{
      path: string;
      attempts: number;
      enqueued_at: number;
    }>;
    return rows.map((r) => ({ path: r.path, lane, attempts: r.attempts, enqueuedAt: r.enqueued_at }));
  }

  /** Uploaded, already present, skipped on purpose, or gone from the store: out of the queue. */
  markDone(paths: readonly string[]): void {
    this.db.transaction(() => {
      for (const p of paths) this.s.remove.run(p);
    })();
  }

  /**
   * One more failure for `path`: it comes back after the backoff delay, or is parked once it has
   * failed `maxAttempts` times. Returns what happened and the delay.
   */
  markFailed(path: string, error: string): { parked: boolean; delayMs: number } {
    const row = this.s.attempts.get(path) as { attempts: number } | undefined;
    if (row === undefined) return { parked: false, delayMs: 0 };
    const attempts = row.attempts + 1;
    const parked = attemptsExhausted(this.policy, attempts);
    const delayMs = parked ? 0 : backoffDelay(this.policy, attempts, this.random);
    this.s.fail.run({
      path,
      attempts,
      state: parked ? 'parked' : 'pending',
      next: this.now() + delayMs,
      error: error.slice(0, 2000),
    });
    return { parked, delayMs };
  }

  /** Parked paths become pending and due now, with a fresh count. Returns how many. */
  requeueParked(): number {
    return this.s.requeue.run(this.now()).changes;
  }

  counts(): QueueCounts {
    const rows = this.s.counts.all() as Array<{ state: string; n: number }>;
    const of = (state: string) => rows.find((r) => r.state === state)?.n ?? 0;
    return { pending: of('pending'), parked: of('parked') };
  }

  /** Pending paths in each lane, due now or later. */
  laneCounts(): LaneCounts {
    const rows = this.s.laneCounts.all() as Array<{ backlog: number; n: number }>;
    const of = (backlog: number) => rows.find((r) => r.backlog === backlog)?.n ?? 0;
    return { new: of(0), backlog: of(1) };
  }

  /**
   * Counts of the rows of `lane` first queued at or before `time` (ms). A path queued again while it
   * waits keeps its first time; one that was uploaded and queued again later is a new row.
   */
  countsQueuedBy(time: number, lane: QueueLane): QueueCounts {
    const backlog = lane === 'backlog' ? 1 : 0;
    const rows = this.s.countsQueuedBy.all(time, backlog) as Array<{ state: string; n: number }>;
    const of = (state: string) => rows.find((r) => r.state === state)?.n ?? 0;
    return { pending: of('pending'), parked: of('parked') };
  }

  parked(limit = 100): ParkedItem[] {
    const rows = this.s.parked.all(limit) as Array<{
      path: string;
      attempts: number;
      last_error: string | null;
    }>;
    return rows.map((r) => ({ path: r.path, attempts: r.attempts, lastError: r.last_error ?? '' }));
  }

  /** When the earliest pending path is due (ms), or undefined for an empty queue. */
  nextDueAt(): number | undefined {
    return (this.s.nextDue.get() as number | null | undefined) ?? undefined;
  }

  getState(key: DaemonStateKey): string | undefined {
    return this.s.getState.get(key) as string | undefined;
  }

  setState(key: DaemonStateKey, value: string): void {
    this.s.setState.run(key, value);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function prepare(db: Database.Database) {
  return {
    insert: db.prepare(
      `INSERT INTO queue (path, state, attempts, next_attempt_at, enqueued_at, backlog)
       VALUES (@path, 'pending', 0, @now, @now, @backlog) ON CONFLICT (path) DO NOTHING`,
    ),
    wake: db.prepare(
      `UPDATE queue SET
         attempts = CASE state WHEN 'parked' THEN 0 ELSE attempts END,
         state = 'pending',
         next_attempt_at = min(next_attempt_at, @now),
         backlog = min(backlog, @backlog)
       WHERE path = @path`,
    ),
    // One lane at a time: a range of queue_lane_due read in order, stopping at `limit`, where one
    // query over both lanes had SQLite sort every due row of the queue for each batch.
    due: db.prepare(
      `SELECT path, attempts, enqueued_at FROM queue
       WHERE state = 'pending' AND backlog = @backlog AND next_attempt_at <= @now
       ORDER BY next_attempt_at LIMIT @limit`,
    ),
    remove: db.prepare('DELETE FROM queue WHERE path = ?'),
    attempts: db.prepare('SELECT attempts FROM queue WHERE path = ?'),
    fail: db.prepare(
      `UPDATE queue SET attempts = @attempts, state = @state, next_attempt_at = @next, last_error = @error
       WHERE path = @path`,
    ),
    requeue: db.prepare(
      `UPDATE queue SET state = 'pending', attempts = 0, next_attempt_at = ? WHERE state = 'parked'`,
    ),
    counts: db.prepare('SELECT state, count(*) AS n FROM queue GROUP BY state'),
    laneCounts: db.prepare(
      `SELECT backlog, count(*) AS n FROM queue WHERE state = 'pending' GROUP BY backlog`,
    ),
    countsQueuedBy: db.prepare(
      'SELECT state, count(*) AS n FROM queue WHERE enqueued_at <= ? AND backlog = ? GROUP BY state',
    ),
    parked: db.prepare(
      `SELECT path, attempts, last_error FROM queue WHERE state = 'parked' ORDER BY path LIMIT ?`,
    ),
    nextDue: db.prepare(`SELECT min(next_attempt_at) FROM queue WHERE state = 'pending'`).pluck(),
    getState: db.prepare('SELECT value FROM daemon_state WHERE key = ?').pluck(),
    setState: db.prepare('INSERT OR REPLACE INTO daemon_state (key, value) VALUES (?, ?)'),
  };
}
type Statements = ReturnType<typeof prepare>;
