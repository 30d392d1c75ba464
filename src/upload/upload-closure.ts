// Uploading the closures of some store paths: query Nix, plan, learn what the cache has, then one
// bounded pool uploads the rest, references first. A path's narinfo waits for its references'
// narinfos, so at every moment the cache holds only whole closures.
import { PresenceBatch } from '../state/presence-batch.js';
import type { PresenceCache } from '../state/presence.js';
import { BACKOFF } from '../backoff.js';
import {
  DependencyFailedError,
  PruneConflictError,
  LoftError,
  isRetryablePathError,
  isTargetFailure,
  oneLine,
  type ErrorCode,
} from '../errors.js';
import type { PathInfo, PathInfoResult } from '../format/path-info.js';
import { hashPartOfParsed } from '../format/store-path.js';
import type { Logger } from '../log.js';
import { planClosure, type SkipReason } from './closure-plan.js';
import { checkPresence } from './presence-check.js';
import type { PruneGuard } from './prune-guard.js';
import type { ProgressSink } from './progress.js';
import { uploadPath, type UploadedPath, type UploadPathDeps } from './upload-path.js';
import { runWithRetries } from './path-retry.js';
import { ensureSignedByUs, signerId, type ReSignResult } from './re-sign.js';
import { UploadSlots, type SlotHolder } from './upload-slots.js';

export interface UploadClosureDeps extends Omit<UploadPathDeps, 'onNarBytes'> {
  /** The store the paths are in: re-signing parses present narinfos against it. */
  storeDir: string;
  cache: PresenceCache;
  queryPathInfos: (paths: string[]) => Promise<PathInfoResult[]>;
  uploadThreads: number;
  skipSignedByKeys: readonly string[];
  uploadDerivations: boolean;
  /** Called once before the first upload of the run (writes nix-cache-info when needed). */
  beforeFirstUpload?: () => Promise<void>;
  progress?: ProgressSink;
  logger: Logger;
  /** Respects prunes of other hosts (mark, wait, sweep); absent in unit tests that need none. */
  pruneGuard?: PruneGuard;
  /**
   * Bytes of NAR bodies the store may hold in memory at once, and the most one body holds: the S3
   * store keeps up to about four parts of a body (src/storage/s3-object-store.ts), and with the
   * largest NARs starting first every upload thread would otherwise hold that much at the same time.
   * A NAR weighs min(its size, perBody); one that would not fit waits its turn. NARs smaller than
   * `exempt` weigh nothing: they are many, each holds little, and they must not queue behind large ones.
   */
  bodyMemory?: { budget: number; perBody: number; exempt: number };
  /** Per-path attempts for transient failures (default BACKOFF.path; the SDK also retries each request). */
  attempts?: number;
  retryBaseMs?: number;
}

export interface UploadRequest {
  paths: string[];
  /** The user named these paths (a named .drv is uploaded). */
  explicit: boolean;
  dryRun: boolean;
  /** Ask the bucket about every member, ignoring the local presence cache. */
  ignoreLocalCache?: boolean;
  /**
   * Hash parts uploaded again even when their narinfo is present (`loft verify --repair` mending a
   * missing or damaged NAR): the NAR and then the narinfo are overwritten.
   */
  forceUpload?: ReadonlySet<string>;
}

export interface FailedPath {
  path: string;
  code: ErrorCode;
  message: string;
}

export interface UploadReport {
  requested: string[];
  closureSize: number;
  uploaded: UploadedPath[];
  alreadyPresent: number;
  learnedFromBucket: number;
  skipped: Array<{ path: string; reason: SkipReason }>;
  failed: FailedPath[];
  /** Members that a dry run would upload, references first. */
  wouldUpload: PathInfo[];
  presenceRequests: number;
  /** Listed paths that left the store before they could be read (set by --force-scan's caller). */
  vanished?: string[];
  /** Present paths whose narinfo got our signature added in place (re-signed, NAR untouched). */
  resigned: string[];
  /** Every requested path is in the cache (or served upstream) afterwards. */
  complete: boolean;
}

export async function uploadClosure(req: UploadRequest, deps: UploadClosureDeps): Promise<UploadReport> {
  const failed: FailedPath[] = [];
  const results = await deps.queryPathInfos(req.paths);
  const infos: PathInfo[] = [];
  for (const r of results) {
    if (r.ok) infos.push(r.info);
    else failed.push({ path: r.path, code: r.error.code, message: oneLine(r.error) });
  }
  const explicit = new Set(req.explicit ? req.paths : []);
  const plan = planClosure(infos, req.paths, {
    skipSignedByKeys: deps.skipSignedByKeys,
    uploadDerivations: deps.uploadDerivations,
    explicit,
  });
  const { presence, pruned } = await presenceAndPrunes(
    plan.candidates.map((i) => i.hashPart),
    req,
    deps,
  );
  const forced = (i: PathInfo) => req.forceUpload?.has(i.hashPart) === true;
  const resign = await reSignPresent(
    plan.candidates.filter((i) => !forced(i)),
    presence.present,
    req,
    deps,
  );
  const missing = plan.candidates.filter(
    (i) => !presence.present.has(i.hashPart) || resign.reupload.has(i.path) || forced(i),
  );
  const report: UploadReport = {
    requested: req.paths,
    closureSize: infos.length,
    uploaded: [],
    alreadyPresent: plan.candidates.length - missing.length,
    learnedFromBucket: presence.learnedFromBucket,
    skipped: plan.skipped,
    failed,
    wouldUpload: req.dryRun ? missing : [],
    presenceRequests: presence.requests + resign.requests,
    resigned: resign.resigned,
    complete: false,
  };
  if (!req.dryRun && missing.length > 0) {
    await deps.beforeFirstUpload?.();
    await uploadMissing(missing, deps, report, pruned.blocked);
  }
  report.complete = isComplete(req.paths, report, missing, req.dryRun);
  return report;
}

/**
 * What the cache has, minus what prunes on other hosts are taking away (src/upload/prune-guard.ts).
 * A batch that finds everything present commits nothing and skips the state listing, so a run the
 * presence cache answers still sends no request; one with uploads to do lists `.loft/` once, and
 * asks about presence again if that listing showed its presence rows may be stale.
 */
async function presenceAndPrunes(hashParts: string[], req: UploadRequest, deps: UploadClosureDeps) {
  const ask = () =>
    checkPresence(hashParts, deps.cache, deps.store, {
      ...(req.ignoreLocalCache ? { ignoreLocal: true } : {}),
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
  const guard = deps.pruneGuard;
  const askedAt = guard?.now();
  let presence = await ask();
  const none = { absent: new Set<string>(), blocked: new Set<string>() };
  // Nothing to upload, nothing to guard; a forced upload (verify --repair) has something.
  const forcing = (req.forceUpload?.size ?? 0) > 0;
  if (!guard || askedAt === undefined || (presence.present.size === hashParts.length && !forcing))
    return { presence, pruned: none };
  if (await guard.startBatch(askedAt, deps.signal)) {
    const first = presence.requests;
    presence = await ask();
    presence.requests += first;
  }
  const pruned = guard.classify(hashParts);
  for (const h of [...pruned.absent, ...pruned.blocked]) presence.present.delete(h);
  return { presence, pruned };
}

/** In a run that signs, present paths must carry our signature (src/upload/re-sign.ts). */
async function reSignPresent(
  candidates: PathInfo[],
  present: Set<string>,
  req: UploadRequest,
  deps: UploadClosureDeps,
): Promise<ReSignResult> {
  if (deps.signingKey === undefined || req.dryRun) return { resigned: [], reupload: new Set(), requests: 0 };
  const found = candidates.filter((i) => present.has(i.hashPart));
  return ensureSignedByUs(found, {
    store: deps.store,
    cache: deps.cache,
    storeDir: deps.storeDir,
    signingKey: deps.signingKey,
    logger: deps.logger,
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
}

function isComplete(
  requested: string[],
  report: UploadReport,
  missing: PathInfo[],
  dryRun: boolean,
): boolean {
  const notThere = new Set(report.failed.map((f) => f.path));
  if (dryRun) for (const m of missing) notThere.add(m.path);
  return requested.every((p) => !notThere.has(p));
}

/**
 * NARs start largest first: the largest NAR is the longest single job, and started last it would
 * run alone at the end (Nix #15957 measured 117.7 s -> 47.2 s for a closure copied with xz). The
 * narinfos still commit references first.
 *
 * Why the reference wait can never deadlock: a path gives its NAR slot back once its NAR is stored,
 * before it waits for its references (upload-slots.ts), so no NAR slot is held by a waiting task
 * and every NAR upload ends on its own; a commit slot is taken only after the wait. Every task is
 * registered in `committed` before any of them waits, so a referrer always finds its references'
 * promises, whatever order the NARs started in.
 */
export function largestFirst(infos: readonly PathInfo[]): PathInfo[] {
  // Equal sizes keep the references-first order (Array.prototype.sort is stable).
  return [...infos].sort((a, b) => b.narSize - a.narSize);
}

/**
 * A task's hold on a NAR slot and, for a NAR that counts against the S3 body budget, its share of
 * that memory. The NAR slot comes first, so NARs start in the slots' order (largest first); a NAR
 * whose memory is not free gives its slot back while it waits for the memory, so it never holds up
 * smaller NARs. No deadlock: whoever holds memory or a slot is streaming its NAR, which ends.
 */
function narHolder(narSlots: UploadSlots, memory: SlotHolder | undefined): Pick<SlotHolder, 'take' | 'give'> {
  const nar = narSlots.holder();
  return {
    take: async () => {
      await nar.take();
      if (memory === undefined || memory.tryTake()) return;
      nar.give();
      await memory.take();
      await nar.take();
    },
    give: () => {
      nar.give();
      memory?.give();
    },
  };
}

async function uploadMissing(
  missing: PathInfo[],
  deps: UploadClosureDeps,
  report: UploadReport,
  blocked: ReadonlySet<string>,
): Promise<void> {
  // Up to upload_threads NARs in flight, and as many narinfo writes; a path gives its NAR slot
  // back before it waits for its references (src/upload/upload-slots.ts).
  const narSlots = new UploadSlots(deps.uploadThreads);
  const commitSlots = new UploadSlots(deps.uploadThreads);
  const memory = deps.bodyMemory;
  const bodyBytes = memory ? new UploadSlots(memory.budget) : undefined;
  const uploading = new Set(missing.map((i) => i.path));
  const beforeCommit = async (info: PathInfo) => {
    await waitFor(info, committed);
    const relied = info.references.filter((r) => r !== info.path && !uploading.has(r));
    await deps.pruneGuard?.beforeCommit(info.hashPart, info.path, relied.map(hashPartOfParsed), deps.signal);
  };
  const committed = new Map<string, Promise<void>>();
  const presence = new PresenceBatch(deps.cache);
  let fatal: Error | undefined;
  deps.progress?.planned(
    missing.length,
    missing.reduce((n, i) => n + i.narSize, 0),
  );
  const tasks = largestFirst(missing).map((info) => {
    const task = (async () => {
      const weighed = memory !== undefined && info.narSize >= memory.exempt;
      const nar = narHolder(
        narSlots,
        weighed ? bodyBytes?.holder(Math.min(info.narSize, memory.perBody)) : undefined,
      );
      try {
        await nar.take();
        if (fatal !== undefined) throw fatal;
        if (blocked.has(info.hashPart)) {
          throw new PruneConflictError(
            `${info.path} not published: a prune is deleting it; it is uploaded again in a later batch`,
          );
        }
        deps.progress?.started(info.path, info.narSize);
        const pathDeps = { ...deps, onNarBytes: (n: number) => deps.progress?.narBytes(info.path, n) };
        const result = await runWithRetries(
          async () => {
            await nar.take(); // again after a failed attempt that had given it back
            let committing = false;
            try {
              return await uploadPath(info, pathDeps, async () => {
                nar.give();
                await beforeCommit(info);
                await commitSlots.acquire();
                committing = true;
              });
            } finally {
              if (committing) commitSlots.release();
            }
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
        presence.add({
          hashPart: info.hashPart,
          narKey: result.narKey,
          narSize: result.narSize,
          fileSize: result.fileSize,
          signer: deps.signingKey ? signerId(deps.signingKey) : '',
        });
        deps.progress?.uploaded(result);
        report.uploaded.push(result);
      } finally {
        nar.give();
      }
    })();
    // Registered before any task runs, so a referrer always finds its references' promises.
    committed.set(info.path, task);
    return task.catch((err: unknown) => {
      if (isTargetFailure(err)) fatal ??= err;
      report.failed.push({
        path: info.path,
        code: err instanceof LoftError ? err.code : 'E_INTERNAL',
        message: oneLine(err),
      });
      deps.progress?.failed(info.path, err);
    });
  });
  try {
    await Promise.all(tasks);
  } finally {
    presence.flush();
  }
  deps.progress?.done();
  if (fatal !== undefined) throw fatal;
}

async function waitFor(info: PathInfo, committed: Map<string, Promise<void>>): Promise<void> {
  for (const ref of info.references) {
    if (ref === info.path) continue;
    const pending = committed.get(ref);
    if (!pending) continue; // already in the cache, or served upstream
    try {
      await pending;
    } catch {
      throw new DependencyFailedError(`${info.path} not published: its reference ${ref} failed to upload`);
    }
  }
}
