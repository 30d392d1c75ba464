// The store watcher and the uploader for the lifetime of one command (`loft --watch-exec`): every
// store path that appears while the command runs is uploaded with its missing closure as soon as
// Nix says it is valid, and `finish` makes sure nothing is left behind when the command has ended.
//
// Events are hints (Nix 2.8 renames an output into the store before it registers it, and removes
// `X.lock` after), so a path Nix does not call valid yet is kept aside and tried again on its next
// hint, and once more at the end. No queue table: a CI job's paths belong to that job, and a
// daemon sharing the database must not pick them up (nor this session the daemon's).
import type { Logger } from '../log.js';
import { StoreWatcher } from '../store/store-watcher.js';
import { isNotValid } from '../upload/path-not-valid.js';
import type { FailedPath, UploadReport } from '../upload/upload-closure.js';
import type { UploadedPath } from '../upload/upload-path.js';
import type { UploadBatch } from './worker.js';

export interface WatchSessionOptions {
  storeDir: string;
  uploadDerivations: boolean;
  upload: UploadBatch;
  logger: Logger;
  /** The watcher's batching window (default 200 ms). */
  quietMs?: number;
}

export interface WatchSessionResult {
  /** What was uploaded, found present, skipped or failed, over all rounds. */
  report: UploadReport;
  /** A failure of a whole round (the bucket unreachable): uploads stopped there. */
  fatal?: unknown;
}

export class WatchSession {
  private readonly watcher: StoreWatcher;
  private readonly candidates = new Set<string>();
  private readonly notYetValid = new Set<string>();
  private readonly done = new Set<string>();
  private readonly failed = new Map<string, FailedPath>();
  private readonly uploaded = new Map<string, UploadedPath>();
  private readonly skipped = new Map<string, UploadReport['skipped'][number]>();
  private readonly resigned = new Set<string>();
  private running: Promise<void> | undefined;
  private fatal: unknown;
  private readonly abort = new AbortController();

  constructor(private readonly opts: WatchSessionOptions) {
    this.watcher = new StoreWatcher({
      storeDir: opts.storeDir,
      uploadDerivations: opts.uploadDerivations,
      onPaths: (paths) => this.hint(paths),
      // The final listing in finish() covers what events miss; a periodic one adds nothing here.
      reconcileMs: 0,
      logger: opts.logger.child({ component: 'watcher' }),
      ...(opts.quietMs !== undefined ? { quietMs: opts.quietMs } : {}),
    });
  }

  /** Lists the store (the baseline: nothing in it now is uploaded) and starts watching. */
  start(): Promise<void> {
    return this.watcher.start();
  }

  /**
   * The command has ended: one more listing catches paths whose events were missed or not handled
   * yet, the watcher stops, and everything still pending (paths not valid at their last hint, and
   * failures, for one more try) goes through a last round. Resolves when all uploads are done.
   */
  async finish(): Promise<WatchSessionResult> {
    await this.watcher.reconcile();
    await this.watcher.stop();
    await this.running;
    for (const p of [...this.notYetValid, ...this.failed.keys()]) this.candidates.add(p);
    this.notYetValid.clear();
    this.kick();
    await this.running;
    // Still not valid now that the command is over: a build that failed, or scratch Nix removed.
    if (this.notYetValid.size > 0) {
      this.opts.logger.debug({ paths: [...this.notYetValid] }, 'paths that never became valid: not uploaded');
    }
    return { report: this.report(), ...(this.fatal !== undefined ? { fatal: this.fatal } : {}) };
  }

  /** Aborts the uploads in flight (a second signal); finish() then returns soon. */
  cancel(): void {
    this.abort.abort();
  }

  private hint(paths: string[]): void {
    for (const p of paths) {
      if (this.done.has(p)) continue;
      this.notYetValid.delete(p);
      this.candidates.add(p);
    }
    this.kick();
  }

  /** One round at a time; hints arriving meanwhile wait for the next round. */
  private kick(): void {
    if (this.running || this.candidates.size === 0) return;
    this.running = this.rounds().finally(() => {
      this.running = undefined;
    });
  }

  private async rounds(): Promise<void> {
    while (this.candidates.size > 0 && this.fatal === undefined && !this.abort.signal.aborted) {
      const paths = [...this.candidates];
      this.candidates.clear();
      try {
        this.record(paths, await this.opts.upload(paths, this.abort.signal));
      } catch (err) {
        // The whole round failed (credentials, bucket, Nix): later rounds would fail the same way.
        this.fatal = err;
        this.opts.logger.error({ err, paths: paths.length }, 'uploads stopped');
      }
    }
  }

  private record(paths: string[], report: UploadReport): void {
    const failures = new Map(report.failed.map((f) => [f.path, f]));
    for (const u of report.uploaded) {
      this.uploaded.set(u.path, u);
      this.failed.delete(u.path);
    }
    for (const sk of report.skipped) this.skipped.set(sk.path, sk);
    for (const p of report.resigned) this.resigned.add(p);
    for (const p of paths) {
      const f = failures.get(p);
      if (f === undefined) {
        this.done.add(p);
        this.failed.delete(p);
      } else if (isNotValid(f)) {
        this.notYetValid.add(p);
      } else {
        this.failed.set(p, f);
      }
    }
    // Closure members that failed on behalf of a requested path.
    for (const f of report.failed) if (!paths.includes(f.path)) this.failed.set(f.path, f);
  }

  /**
   * Over all rounds. Each round's own "already present" count includes what earlier rounds
   * uploaded (a later path's closure holds the earlier ones), so it is not summed: a path counts
   * as present when the command made it and the cache had it without an upload from this run.
   */
  private report(): UploadReport {
    const uploaded = [...this.uploaded.values()];
    const failed = [...this.failed.values()];
    const present = [...this.done].filter((p) => !this.uploaded.has(p) && !this.skipped.has(p));
    return {
      requested: [...this.done, ...this.failed.keys()],
      closureSize: uploaded.length + present.length,
      uploaded,
      alreadyPresent: present.length,
      learnedFromBucket: 0,
      skipped: [...this.skipped.values()],
      failed,
      wouldUpload: [],
      presenceRequests: 0,
      resigned: [...this.resigned],
      complete: failed.length === 0 && this.fatal === undefined,
    };
  }
}
