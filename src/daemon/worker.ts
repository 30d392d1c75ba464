// The daemon's upload worker: wakes when told about new paths or on a poll timer (another process,
// `loft --enqueue`, may have written to the queue), takes the paths that are due, uploads their
// closures as one batch and settles each path on its own outcome. A failing path is retried with
// backoff and eventually parked; it never holds up the others. A failure of the whole batch (the
// bucket unreachable, Nix missing) is not the paths' fault: they are left as they were and the worker
// itself backs off, resetting on the next success. A refusal of the whole target (credentials
// revoked, bucket deleted: a target failure) is "access lost" (access-state.ts): the worker then
// only probes, rarely, and takes up its queue again once the store answers.
import { setTimeout as sleep } from 'node:timers/promises';
import { isTargetFailure } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { storePathExists } from '../store/path-exists.js';
import { isNotValid } from '../upload/path-not-valid.js';
import type { FailedPath, UploadReport } from '../upload/upload-closure.js';
import { BACKOFF, backoffDelay, type Backoff } from '../backoff.js';
import type { QueueItem, UploadQueue } from '../state/queue.js';
import { AccessState } from './access-state.js';
import { isDatabaseCorrupt } from '../state/heal.js';

export type UploadBatch = (paths: string[], signal: AbortSignal) => Promise<UploadReport>;

export interface UploadWorkerOptions {
  queue: UploadQueue;
  upload: UploadBatch;
  /** Paths per batch (default 200). */
  batchSize?: number;
  /** Longest sleep between looks at the queue (default 2 s). */
  pollMs?: number;
  /**
   * Backoff of the worker after a whole batch failed (default BACKOFF.batch: 1 s doubling to 60 s).
   * Only tests pass it, to see a failed batch retried in milliseconds.
   */
  batchRetry?: Partial<Backoff>;
  /** Told when the target refuses loft and when it accepts again (default: one of its own). */
  access?: AccessState;
  /**
   * One cheap request that fails like an upload would when access is lost (access-state.ts's
   * probeAccess); while access is lost, the worker sends it instead of a whole batch.
   */
  probeAccess?: (signal: AbortSignal) => Promise<void>;
  /** SQLite reported the database damaged: the worker stops and tells (daemon.ts's DaemonDeps). */
  onDatabaseDamaged?: (err: unknown) => void;
  /** Backoff while access is lost (default BACKOFF.accessLost); tests shorten it. */
  accessRetry?: Partial<Backoff>;
  /** Whether a path still exists in the store (default: storePathExists). */
  pathExists?: (path: string) => Promise<boolean>;
  logger?: Logger;
}

export interface WorkerStats {
  uploaded: number;
  batches: number;
  lastUploadAt?: number;
}

export class UploadWorker {
  readonly stats: WorkerStats = { uploaded: 0, batches: 0 };
  private readonly logger: Logger;
  private running: Promise<void> | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  private notified = false;
  private readonly abort = new AbortController();
  /** The batch being uploaded, if any. */
  private batchInFlight: Promise<void> | undefined;
  /** An exclusive job (a prune) that no batch may overlap. */
  private pausedBy: Promise<unknown> | undefined;

  readonly access: AccessState;

  constructor(private readonly opts: UploadWorkerOptions) {
    this.logger = opts.logger ?? silentLogger();
    this.access = opts.access ?? new AccessState({ logger: this.logger });
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** New paths were queued: look now instead of at the next poll. */
  notify(): void {
    this.notified = true;
    this.wake?.();
  }

  /**
   * Runs `job` while no upload batch runs: it waits for the batch in flight, and no new batch starts
   * until it settles. The daemon's scheduled prune goes through here, so it never deletes a path
   * that one of its own uploads has just found present and is about to reference.
   */
  async exclusive<T>(job: () => Promise<T>): Promise<T> {
    const run = (async () => {
      while (this.batchInFlight) await this.batchInFlight.catch(() => undefined);
      return job();
    })();
    this.pausedBy = run;
    try {
      return await run;
    } finally {
      if (this.pausedBy === run) this.pausedBy = undefined;
      this.notify();
    }
  }

  /**
   * Takes no new batch; the batch in flight may finish within `graceMs`, after which its uploads
   * are aborted. Queue rows of unfinished paths stay for the next start.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.wake?.();
    if (!this.running) return;
    const timer = setTimeout(() => this.abort.abort(), graceMs);
    try {
      await this.running;
    } finally {
      clearTimeout(timer);
    }
  }

  private async loop(): Promise<void> {
    let failures = 0;
    /** Looks at the target that it refused, since access was lost. */
    let refusals = 0;
    while (!this.stopping) {
      this.notified = false;
      let batch = 0;
      if (this.pausedBy) {
        await this.pausedBy.catch(() => undefined);
        continue;
      }
      if (this.access.lost !== undefined && refusals > 0) {
        await this.idle(backoffDelay({ ...BACKOFF.accessLost, ...this.opts.accessRetry }, refusals), false);
        if (this.stopping) break;
      }
      try {
        if (this.access.lost !== undefined) await this.opts.probeAccess?.(this.abort.signal);
        // The queue is read inside the try too: a database error (a lock held too long by another
        // process) must back the worker off, not end it.
        const items = this.opts.queue.takeDue(this.opts.batchSize ?? 200);
        batch = items.length;
        if (items.length === 0) {
          this.accessRegained();
          refusals = 0;
          await this.idle(this.untilNextDue());
          continue;
        }
        this.batchInFlight = this.runBatch(items);
        try {
          await this.batchInFlight;
        } finally {
          this.batchInFlight = undefined;
        }
        failures = 0;
        refusals = 0;
        this.accessRegained();
      } catch (err) {
        if (this.abort.signal.aborted) break;
        if (this.opts.onDatabaseDamaged && isDatabaseCorrupt(err)) {
          this.opts.onDatabaseDamaged(err);
          break;
        }
        if (isTargetFailure(err)) {
          // Not one line per batch or path: the access state logs when it changes.
          refusals++;
          this.access.markLost(err, this.opts.queue.counts().pending);
          continue;
        }
        failures++;
        const delayMs = backoffDelay({ ...BACKOFF.batch, ...this.opts.batchRetry }, failures, () => 1);
        this.logger.error({ err, paths: batch, delayMs }, 'upload batch failed; retrying later');
        await this.idle(delayMs, false);
      }
    }
  }

  private accessRegained(): void {
    if (this.access.lost !== undefined) this.access.markOk();
  }

  private untilNextDue(): number {
    const poll = this.opts.pollMs ?? 2000;
    const next = this.opts.queue.nextDueAt();
    return next === undefined ? poll : Math.max(0, Math.min(poll, next - Date.now()));
  }

  /** Sleeps `ms`, or less when stopped (and, with `wakeOnNotify`, when notified). */
  private async idle(ms: number, wakeOnNotify = true): Promise<void> {
    if (this.stopping || (wakeOnNotify && this.notified)) return;
    const ac = new AbortController();
    this.wake = () => {
      if (this.stopping || wakeOnNotify) ac.abort();
    };
    try {
      await sleep(ms, undefined, { signal: ac.signal });
    } catch {
      // woken up
    } finally {
      this.wake = undefined;
    }
  }

  private async runBatch(items: QueueItem[]): Promise<void> {
    const paths = items.map((i) => i.path);
    this.logger.debug({ paths: paths.length }, 'upload batch started');
    const report = await this.opts.upload(paths, this.abort.signal);
    this.stats.batches++;
    if (report.uploaded.length > 0) {
      this.stats.uploaded += report.uploaded.length;
      this.stats.lastUploadAt = Date.now();
      this.opts.queue.setState('last_upload_at', String(this.stats.lastUploadAt));
    }
    await this.settle(paths, report.failed);
  }

  /** Each requested path: done, dropped (gone from the store), retried later, or parked. */
  private async settle(paths: string[], failed: FailedPath[]): Promise<void> {
    const failures = new Map(failed.map((f) => [f.path, f]));
    const done: string[] = [];
    for (const path of paths) {
      const f = failures.get(path);
      if (f === undefined) {
        done.push(path);
      } else if (this.abort.signal.aborted) {
        continue; // cut short by shutdown: tried again on the next start, no failure counted
      } else if (isNotValid(f) && !(await this.exists(path))) {
        this.logger.info({ path }, 'path left the store before upload (garbage-collected); dropped');
        done.push(path);
      } else {
        this.retryLater(path, f);
      }
    }
    this.opts.queue.markDone(done);
  }

  private retryLater(path: string, f: FailedPath): void {
    const message = isNotValid(f) ? `not valid yet: ${f.message}` : `${f.code}: ${f.message}`;
    const { parked, delayMs } = this.opts.queue.markFailed(path, message);
    if (parked)
      this.logger.error({ path, error: message }, 'upload keeps failing; parked (see loft --status)');
    else if (isNotValid(f)) this.logger.debug({ path, delayMs }, 'path not valid yet; retrying later');
    else this.logger.warn({ path, delayMs, error: message }, 'upload failed; retrying later');
  }

  private async exists(path: string): Promise<boolean> {
    return (this.opts.pathExists ?? storePathExists)(path);
  }
}
