// One store path's upload within a closure upload, start to end, and what the paths of one upload
// share. Each path goes through three steps, retried together on a transient failure:
//   1. NAR: under its turn (nar-turns.ts: an upload slot and the memory its body takes in the
//      store), dumped, compressed, stored, and checked against Nix's NarHash and NarSize;
//   2. wait: its references' narinfos are committed (or the reference failed, and so does it), and
//      no prune on another host is deleting what it relies on (prune-guard.ts);
//   3. commit: its signed narinfo written under a commit slot, the point at which Nix sees it.
// Then, once, the path is recorded as present. The turn is held in step 1 only, so a path waiting
// for its references holds no upload slot (docs/architecture.md, "Whole closures only").
import { BACKOFF } from '../backoff.js';
import {
  DependencyFailedError,
  PruneConflictError,
  isRetryablePathError,
  isTargetFailure,
} from '../errors.js';
import type { PathInfo } from '../format/path-info.js';
import { hashPartOfParsed } from '../format/store-path.js';
import type { PresenceCache } from '../state/presence.js';
import { PresenceBatch } from '../state/presence-batch.js';
import { NarTurns, type BodyMemory } from './nar-turns.js';
import { runWithRetries } from './path-retry.js';
import type { ProgressSink } from './progress.js';
import type { PruneGuard } from './prune-guard.js';
import { signerId } from './re-sign.js';
import { Semaphore } from './semaphore.js';
import { commitNarInfo, uploadNar, type UploadedPath, type UploadPathDeps } from './upload-path.js';

export interface PathTaskDeps extends Omit<UploadPathDeps, 'onNarBytes' | 'onFileBytes' | 'onStoredBytes'> {
  cache: PresenceCache;
  uploadThreads: number;
  progress?: ProgressSink;
  /** Respects prunes of other hosts (mark, wait, sweep); absent in unit tests that need none. */
  pruneGuard?: PruneGuard;
  /** The run's memory budget, from which NAR bodies the store holds take their bytes. */
  bodyMemory?: BodyMemory;
  /**
   * Resolves once nix-cache-info is right in the cache (memoized by the caller, a failed write
   * forgotten): every narinfo waits for it, the NARs do not.
   */
  cacheInfoWritten?: () => Promise<void>;
  /** Per-path attempts for transient failures (default BACKOFF.path; the SDK also retries each request). */
  attempts?: number;
  retryBaseMs?: number;
}

/**
 * Narinfo writes in flight at once, per upload thread. A narinfo is a few hundred bytes: its write
 * costs a round trip, not bandwidth, so the bound is on requests. Once the last NARs of a layer are
 * stored, its narinfos (and then their referrers') are ready together: with one write per thread,
 * the wide-area bench's last 50 narinfos left in waves of 12, one round trip each (about 250 ms
 * at 40 ms, the link idle). The HTTP client's own socket limit and the request limiter, which
 * backs off on throttled answers (storage/s3-request-limit.ts), still bound what reaches S3.
 */
export const NARINFO_WRITES_PER_THREAD = 4;

/** The tasks of one closure upload: its paths, started in the order given (largest NAR first). */
export class PathTasks {
  /** A failure of the target itself (credentials, bucket): paths not yet streaming stop with it. */
  fatal: Error | undefined;
  private readonly turns: NarTurns;
  /** Narinfo writes at once, besides the NAR uploads. */
  private readonly commits: Semaphore;
  /**
   * Every path of this upload, to the moment its narinfo is written (rejected if the path fails
   * before): a referrer waits for this, not for the extras its references write after the
   * narinfo (a build log: two more round trips per layer of the closure, in series).
   */
  private readonly published = new Map<string, Deferred>();
  private readonly presence: PresenceBatch;

  /**
   * @param blocked hash parts a prune is deleting: their uploads fail with E_PRUNE_CONFLICT and
   *   wait for a later batch.
   */
  constructor(
    private readonly deps: PathTaskDeps,
    private readonly blocked: ReadonlySet<string>,
  ) {
    this.turns = new NarTurns(deps.uploadThreads, deps.store, deps.bodyMemory);
    this.commits = new Semaphore(deps.uploadThreads * NARINFO_WRITES_PER_THREAD);
    this.presence = new PresenceBatch(deps.cache);
  }

  /**
   * Starts every path's task; every path's publication is registered before any task runs, so a
   * referrer always finds its references', whatever order they start in.
   */
  start(infos: readonly PathInfo[], known: { noLogsStored?: boolean } = {}): Array<Promise<UploadedPath>> {
    this.deps.extras?.prepare(infos, known);
    for (const info of infos) this.published.set(info.path, new Deferred());
    return infos.map((info) => {
      const task = this.run(info);
      task.catch((err: unknown) => {
        if (isTargetFailure(err)) this.fatal ??= err;
        this.published.get(info.path)!.reject(err);
      });
      return task;
    });
  }

  /**
   * Settles once every path of this upload has its narinfo written, or has failed: what comes after
   * the narinfos (the signed record) need not wait for the extras written after them (build logs).
   */
  committed(): Promise<void> {
    return Promise.allSettled([...this.published.values()].map((d) => d.promise)).then(() => undefined);
  }

  /** Writes the presence rows of every path committed so far (at the end of the upload). */
  flush(): void {
    this.presence.flush();
  }

  private async run(info: PathInfo): Promise<UploadedPath> {
    const { deps } = this;
    let started = false;
    const uploaded = await runWithRetries(
      async () => {
        const stored = await this.turns.with(info.narSize, () => {
          if (this.fatal !== undefined) throw this.fatal;
          if (this.blocked.has(info.hashPart)) {
            throw new PruneConflictError(
              `${info.path} not published: a prune is deleting it; it is uploaded again in a later batch`,
            );
          }
          if (!started) deps.progress?.started(info.path, info.narSize);
          started = true;
          return uploadNar(info, { ...deps, ...progressOf(info.path, deps.progress) });
        });
        deps.progress?.narStored(info.path, stored.fileSize);
        // Answered while the path waits for its references and writes its narinfo (asked before
        // the NAR, twelve HEADs went out ahead of the first NARs of the run).
        deps.extras?.askAhead(info);
        // Listings and debug-info entries name the NAR, so they go before the narinfo; realisations
        // and the build log after it (path-extras.ts). A failed extra fails the attempt like a
        // failed narinfo write, so nothing a published path needs goes missing.
        await deps.extras?.afterNar(info, stored.narKey, stored.listing);
        await this.referencesCommitted(info);
        // Nix reads nix-cache-info before any narinfo of a cache, so none is published before it.
        await deps.cacheInfoWritten?.();
        const committed = await this.commits.use(() => commitNarInfo(stored, deps));
        this.published.get(info.path)!.resolve();
        await deps.extras?.afterNarInfo(info);
        return committed;
      },
      {
        policy: {
          ...BACKOFF.path,
          ...(deps.attempts !== undefined ? { maxAttempts: deps.attempts } : {}),
          ...(deps.retryBaseMs !== undefined ? { baseMs: deps.retryBaseMs } : {}),
        },
        retryable: isRetryablePathError,
        onRetry: (attempt, err, delayMs) => deps.progress?.retrying(info.path, attempt, err, delayMs),
        ...(deps.signal ? { signal: deps.signal } : {}),
      },
    );
    this.afterCommit(info, uploaded);
    return uploaded;
  }

  /**
   * The path's narinfo (and its extras) are in the cache: record it, once, outside the retries.
   */
  private afterCommit(info: PathInfo, uploaded: UploadedPath): void {
    const { deps } = this;
    this.presence.add({
      hashPart: info.hashPart,
      narKey: uploaded.narKey,
      narSize: uploaded.narSize,
      fileSize: uploaded.fileSize,
      signer: deps.signingKey ? signerId(deps.signingKey) : '',
    });
    deps.progress?.uploaded(uploaded);
  }

  /**
   * Resolves once every reference's narinfo is in the cache and no prune is deleting what the path
   * relies on; a reference that failed fails the path, whose narinfo is then not written.
   */
  private async referencesCommitted(info: PathInfo): Promise<void> {
    for (const ref of info.references) {
      if (ref === info.path) continue;
      const pending = this.published.get(ref);
      if (!pending) continue; // already in the cache, or served upstream
      try {
        await pending.promise;
      } catch {
        throw new DependencyFailedError(`${info.path} not published: its reference ${ref} failed to upload`);
      }
    }
    const relied = info.references.filter((r) => r !== info.path && !this.published.has(r));
    await this.deps.pruneGuard?.beforeCommit(
      info.hashPart,
      info.path,
      relied.map(hashPartOfParsed),
      this.deps.signal,
    );
  }
}

/** The byte counts of one path's NAR upload, reported to the run's progress. */
function progressOf(path: string, progress: ProgressSink | undefined) {
  if (!progress) return {};
  return {
    onNarBytes: (n: number) => progress.narBytes(path, n),
    onFileBytes: (n: number) => progress.fileBytes(path, n),
    onStoredBytes: (n: number) => progress.storedBytes(path, n),
  };
}

/**
 * A promise settled from outside, once: resolved when a path's narinfo is written, rejected when the
 * path fails without one. Settling it again does nothing (a later attempt, or the task's end).
 */
class Deferred {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (err: unknown) => void;
  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Nobody may wait for it (no referrer in this upload): a rejection is no unhandled error.
    this.promise.catch(() => undefined);
  }
}
