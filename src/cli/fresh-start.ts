// The daemon starts afresh, in the same process, once it is idle after many uploads
// (`fresh_start_after_uploads`, default 5,000): it stops as it does on SIGTERM, closes everything,
// and executes itself again (process.execve: the same PID, so systemd and whoever signals it see one
// process). The new image starts with the memory of a daemon that has uploaded nothing.
//
// Why: what a long drain leaves behind cannot be given back from inside the process. Measured on a
// daemon idle after the initial scan of a 100,000-path store (docs/architecture.md, "An idle daemon
// starts afresh"): after the idle release (V8's collection, the malloc trim) it still held 80-83
// MB, where the same daemon after 3,000 paths held 71-75: the C allocator's main arena kept 12 MB of
// pages that a few live chunks pin among the drain's freed ones (6 MB after 3,000 paths), and the
// node binary's pages of the optimizing compilers (TurboFan, Maglev: 7.5 MB), touched by the
// drain's hot code, stay mapped. A new image maps only what its start touches.
//
// What it costs, once per drain of that size: Node's start and loft's modules (about 0.3 s of CPU),
// the storage check, one listing of the store and an lstat of each entry for the catch-up (paths
// that landed during the exec, see daemon.ts's catch-up; its slack is short here, as the previous
// image watched until a moment ago). The queue, its lanes and the presence cache live in the
// database and carry over; the metrics' counters start again from zero, as after a restart.
// Not done while anything is queued or parked (a start requeues parked paths), nor with
// populate_cache_on_startup (a start lists the bucket).
import type { ExecDeps } from './malloc-arenas.js';
import { processExecDeps } from './malloc-arenas.js';

/** Set in the environment of the new image, so that it knows the previous one watched until now. */
export const FRESH_START_ENV = 'LOFT_FRESH_START';
/** The catch-up's slack after a fresh start: the previous image recorded its last watch on its way out. */
export const FRESH_START_SLACK_MS = 10_000;

export interface QueueCountsView {
  pending: number;
  parked: number;
}

/** Counts the paths the daemon's batches uploaded and says when a fresh start is due. */
export class FreshStart {
  private uploaded = 0;
  private readonly requested = new AbortController();

  constructor(
    /** 0: never. */
    private readonly afterUploads: number,
    private readonly deps: ExecDeps = processExecDeps(),
  ) {}

  /** Aborted once a fresh start is asked for: the daemon stops as on SIGTERM. */
  get signal(): AbortSignal {
    return this.requested.signal;
  }

  /**
   * `upload`, counting the paths each batch uploaded. Paths found in the cache do not count: the
   * catch-up of a fresh start queues the last seconds' paths again, and they must not start
   * another one.
   */
  counting<A extends unknown[], R extends { uploaded: readonly unknown[] }>(
    upload: (...args: A) => Promise<R>,
  ): (...args: A) => Promise<R> {
    return async (...args) => {
      const report = await upload(...args);
      this.uploaded += report.uploaded.length;
      return report;
    };
  }

  /**
   * Asks for a fresh start when enough paths were uploaded and nothing waits in the queue; true when
   * it did. Called by the idle release, once no batch has run for a while.
   */
  requestIfDue(counts: QueueCountsView): boolean {
    if (this.afterUploads === 0 || this.uploaded < this.afterUploads || this.requested.signal.aborted)
      return false;
    if (counts.pending > 0 || counts.parked > 0 || this.deps.execve === undefined) return false;
    this.requested.abort();
    return true;
  }

  /** How many paths the batches uploaded since this image started. */
  get pathsUploaded(): number {
    return this.uploaded;
  }

  /** Executes this process again with the same arguments; does not return (unless execve is missing). */
  replaceProcess(): void {
    const d = this.deps;
    if (d.execve === undefined) return;
    d.execve(d.execPath, [d.execPath, ...d.execArgv, ...d.argv.slice(1)], {
      ...d.env,
      [FRESH_START_ENV]: '1',
    });
  }
}

/**
 * True when this image was started afresh by the previous one (and forgets it, so that no child
 * process inherits the mark).
 */
export function takeFreshStartMark(env: NodeJS.ProcessEnv = process.env): boolean {
  const marked = env[FRESH_START_ENV] === '1';
  delete env[FRESH_START_ENV];
  return marked;
}
