// Uploading the closures of some store paths: query Nix, plan, learn what the cache has, then one
// bounded pool uploads the rest, references first. A path's narinfo waits for its references'
// narinfos, so at every moment the cache holds only whole closures.
import pLimit from 'p-limit';
import type { PresenceCache } from '../cache/presence-cache.js';
import { CorruptPathError, ExitCode, LoftError, StorageError, oneLine } from '../errors.js';
import type { PathInfo, PathInfoResult } from '../format/path-info.js';
import { hashPartOf } from '../format/store-path.js';
import type { Logger } from '../log.js';
import { planClosure, type SkipReason } from './closure-plan.js';
import { checkPresence } from './presence-check.js';
import { PruneConflictError, type PruneGuard } from './prune-guard.js';
import type { ProgressSink } from './progress.js';
import { uploadPath, type UploadedPath, type UploadPathDeps } from './upload-path.js';
import { runWithRetries } from './path-retry.js';
import { ensureSignedByUs, signerId, type ReSignResult } from './re-sign.js';

export interface UploadClosureDeps extends Omit<UploadPathDeps, 'onNarBytes'> {
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
  /** Per-path attempts for transient failures (the SDK also retries each request). */
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
}

export interface FailedPath {
  path: string;
  code: string;
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
  const hashOf = (i: PathInfo) => hashPartOf(i.path, deps.storeDir);
  const { presence, pruned } = await presenceAndPrunes(plan.candidates.map(hashOf), req, deps);
  const resign = await reSignPresent(plan.candidates, presence.present, req, deps);
  const missing = plan.candidates.filter(
    (i) => !presence.present.has(hashOf(i)) || resign.reupload.has(i.path),
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
  if (!guard || askedAt === undefined || presence.present.size === hashParts.length)
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
  const found = candidates.filter((i) => present.has(hashPartOf(i.path, deps.storeDir)));
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

/** A failure that makes every other upload pointless: wrong credentials, no bucket. */
/** Failures of the whole target, not of one path: the run stops and reports this one error. */
const FATAL_STORAGE_CODES = new Set([
  'E_STORAGE_AUTH',
  'E_STORAGE_NO_BUCKET',
  'E_STORAGE_NOT_S3',
  'E_STORAGE_UNWRITABLE',
]);

function isFatal(err: unknown): boolean {
  return err instanceof StorageError && FATAL_STORAGE_CODES.has(err.code);
}

async function uploadMissing(
  missing: PathInfo[],
  deps: UploadClosureDeps,
  report: UploadReport,
  blocked: ReadonlySet<string>,
): Promise<void> {
  const limit = pLimit(deps.uploadThreads);
  const uploading = new Set(missing.map((i) => i.path));
  const beforeCommit = async (info: PathInfo) => {
    await waitFor(info, committed);
    const relied = info.references.filter((r) => r !== info.path && !uploading.has(r));
    const hashOf = (p: string) => hashPartOf(p, deps.storeDir);
    await deps.pruneGuard?.beforeCommit(hashOf(info.path), info.path, relied.map(hashOf), deps.signal);
  };
  const committed = new Map<string, Promise<void>>();
  let fatal: Error | undefined;
  deps.progress?.planned(
    missing.length,
    missing.reduce((n, i) => n + i.narSize, 0),
  );
  const tasks = missing.map((info) => {
    const task = limit(async () => {
      if (fatal !== undefined) throw fatal;
      if (blocked.has(hashPartOf(info.path, deps.storeDir))) {
        throw new PruneConflictError(
          `${info.path} not published: a prune is deleting it; it is uploaded again in a later batch`,
        );
      }
      deps.progress?.started(info.path, info.narSize);
      const waitForReferences = () => beforeCommit(info);
      const result = await runWithRetries(
        () =>
          uploadPath(
            info,
            { ...deps, onNarBytes: (n) => deps.progress?.narBytes(info.path, n) },
            waitForReferences,
          ),
        {
          attempts: deps.attempts ?? 3,
          baseMs: deps.retryBaseMs ?? 1000,
          retryable: (err) =>
            !(err instanceof CorruptPathError) &&
            !isFatal(err) &&
            !(err instanceof DependencyFailedError) &&
            !(err instanceof PruneConflictError),
          onRetry: (attempt, err, delayMs) => deps.progress?.retrying(info.path, attempt, err, delayMs),
          ...(deps.signal ? { signal: deps.signal } : {}),
        },
      );
      deps.cache.add(hashPartOf(info.path, deps.storeDir), {
        narKey: result.narKey,
        narSize: result.narSize,
        fileSize: result.fileSize,
        signer: deps.signingKey ? signerId(deps.signingKey) : '',
      });
      deps.progress?.uploaded(result);
      report.uploaded.push(result);
    });
    // Registered before any task runs, so a referrer always finds its references' promises.
    committed.set(info.path, task);
    return task.catch((err: unknown) => {
      if (isFatal(err)) fatal ??= err as StorageError;
      report.failed.push({
        path: info.path,
        code: err instanceof LoftError ? err.code : 'E_INTERNAL',
        message: oneLine(err),
      });
      deps.progress?.failed(info.path, err);
    });
  });
  await Promise.all(tasks);
  deps.progress?.done();
  if (fatal !== undefined) throw fatal;
}

export class DependencyFailedError extends LoftError {
  override readonly name = 'DependencyFailedError';
  readonly code = 'E_DEPENDENCY_FAILED';
  readonly exitCode = ExitCode.partial;
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
