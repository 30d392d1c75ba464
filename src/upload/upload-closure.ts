// Uploading the closures of some store paths: query Nix, plan, learn what the cache has, then one
// bounded pool uploads the rest, references first. A path's narinfo waits for its references'
// narinfos, so at every moment the cache holds only whole closures.
import pLimit, { type LimitFunction } from 'p-limit';
import type { PresenceCache } from '../cache/presence-cache.js';
import { CorruptPathError, ExitCode, LoftError, StorageError, oneLine } from '../errors.js';
import type { PathInfo, PathInfoResult } from '../format/path-info.js';
import { hashPartOf } from '../format/store-path.js';
import type { Logger } from '../log.js';
import { planClosure, type SkipReason } from './closure-plan.js';
import { checkPresence } from './presence-check.js';
import type { ProgressSink } from './progress.js';
import {
  commitNarInfo,
  uploadNar,
  type StoredNar,
  type UploadedPath,
  type UploadPathDeps,
} from './upload-path.js';
import { runWithRetries, type RetryOptions } from './path-retry.js';
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
  const presence = await checkPresence(plan.candidates.map(hashOf), deps.cache, deps.store, {
    ...(req.ignoreLocalCache ? { ignoreLocal: true } : {}),
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
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
    await uploadMissing(missing, deps, report);
  }
  report.complete = isComplete(req.paths, report, missing, req.dryRun);
  return report;
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

/**
 * NARs go through one pool of `uploadThreads`, largest first: the largest NAR is the longest single
 * job, and started last it would run alone at the end (Nix #15957 measured 117.7 s -> 47.2 s). The
 * narinfos still commit references first, outside the pool.
 *
 * Why the reference wait can never deadlock: a task leaves the pool as soon as its NAR is stored,
 * before it waits, so no pool slot is ever held by a task that waits, and every NAR upload ends on
 * its own. A commit then waits only for commits of paths earlier in the references-first order
 * (`missing` is in that order), and the earliest waiting commit waits for nothing, so every commit
 * settles. A cycle in corrupt input cannot make two commits wait for each other either: the later
 * one in the order does not wait for the earlier one's referrer.
 */
async function uploadMissing(
  missing: PathInfo[],
  deps: UploadClosureDeps,
  report: UploadReport,
): Promise<void> {
  const limit = pLimit(deps.uploadThreads);
  // Narinfo PUTs get a bound of their own: when a large reference commits, all its waiting
  // referrers commit at once. A commit takes this slot only after its wait, so it never blocks one.
  const commitLimit = pLimit(deps.uploadThreads);
  const committed = new Map<string, Promise<void>>();
  const position = new Map(missing.map((info, i) => [info.path, i]));
  const state = { fatal: undefined as Error | undefined };
  deps.progress?.planned(
    missing.length,
    missing.reduce((n, i) => n + i.narSize, 0),
  );
  for (const info of largestFirst(missing)) {
    const stored = limit(() => storeNar(info, deps, state));
    const refsBefore = info.references.filter((r) => (position.get(r) ?? -1) < position.get(info.path)!);
    const task = stored
      .then((nar) => commitAfter(nar, refsBefore, committed, commitLimit, deps))
      .then((result) => void report.uploaded.push(result));
    // Registered before any commit waits, so a referrer always finds its references' promises.
    committed.set(info.path, task);
  }
  const tasks = missing.map((info) =>
    committed.get(info.path)!.catch((err: unknown) => {
      if (isFatal(err)) state.fatal ??= err as StorageError;
      report.failed.push({
        path: info.path,
        code: err instanceof LoftError ? err.code : 'E_INTERNAL',
        message: oneLine(err),
      });
      deps.progress?.failed(info.path, err);
    }),
  );
  await Promise.all(tasks);
  deps.progress?.done();
  if (state.fatal !== undefined) throw state.fatal;
}

/** Largest NAR first; equal sizes keep the references-first order (Array.prototype.sort is stable). */
export function largestFirst(infos: readonly PathInfo[]): PathInfo[] {
  return [...infos].sort((a, b) => b.narSize - a.narSize);
}

async function storeNar(info: PathInfo, deps: UploadClosureDeps, state: { fatal: Error | undefined }) {
  if (state.fatal !== undefined) throw state.fatal;
  deps.progress?.started(info.path, info.narSize);
  const pathDeps = { ...deps, onNarBytes: (n: number) => deps.progress?.narBytes(info.path, n) };
  return await runWithRetries(() => uploadNar(info, pathDeps), retryOptions(info, deps));
}

async function commitAfter(
  stored: StoredNar,
  refs: string[],
  committed: Map<string, Promise<void>>,
  commitLimit: LimitFunction,
  deps: UploadClosureDeps,
): Promise<UploadedPath> {
  const { info } = stored;
  await waitFor(info, refs, committed);
  const result = await commitLimit(() =>
    runWithRetries(() => commitNarInfo(stored, deps), retryOptions(info, deps)),
  );
  deps.cache.add(hashPartOf(info.path, deps.storeDir), {
    narKey: result.narKey,
    narSize: result.narSize,
    fileSize: result.fileSize,
    signer: deps.signingKey ? signerId(deps.signingKey) : '',
  });
  deps.progress?.uploaded(result);
  return result;
}

function retryOptions(info: PathInfo, deps: UploadClosureDeps): RetryOptions {
  return {
    attempts: deps.attempts ?? 3,
    baseMs: deps.retryBaseMs ?? 1000,
    retryable: (err) => !(err instanceof CorruptPathError) && !isFatal(err),
    onRetry: (attempt, err, delayMs) => deps.progress?.retrying(info.path, attempt, err, delayMs),
    ...(deps.signal ? { signal: deps.signal } : {}),
  };
}

export class DependencyFailedError extends LoftError {
  override readonly name = 'DependencyFailedError';
  readonly code = 'E_DEPENDENCY_FAILED';
  readonly exitCode = ExitCode.partial;
}

async function waitFor(info: PathInfo, refs: string[], committed: Map<string, Promise<void>>): Promise<void> {
  for (const ref of refs) {
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
