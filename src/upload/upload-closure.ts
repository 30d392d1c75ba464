// Uploading the closures of some store paths: query Nix, plan, learn what the cache has, then one
// bounded pool uploads the rest, references first. A path's narinfo waits for its references'
// narinfos, so at every moment the cache holds only whole closures.
import { LoftError, oneLine, type ErrorCode } from '../errors.js';
import type { PathInfo, PathInfoResult } from '../format/path-info.js';
import { LOG_FOLDER } from '../format/bucket-layout.js';
import type { Logger } from '../log.js';
import { planClosure, type SkipReason } from './closure-plan.js';
import { PathTasks, type PathTaskDeps } from './path-task.js';
import { checkPresence, type PresenceResult } from './presence-check.js';
import { ensureSignedByUs, signerId, type ReSignResult } from './re-sign.js';
import { SMALL_NAR_BYTES, type UploadedPath } from './upload-path.js';

export interface UploadClosureDeps extends PathTaskDeps {
  /** The store the paths are in: re-signing parses present narinfos against it. */
  storeDir: string;
  queryPathInfos: (paths: string[]) => Promise<PathInfoResult[]>;
  skipSignedByKeys: readonly string[];
  uploadDerivations: boolean;
  /**
   * nix-cache-info: `check` reads it (and refuses a bucket of another store) before the run's
   * first NAR; `write` writes it when needed, before the first narinfo. Both memoized.
   */
  cacheInfo?: { check: () => Promise<unknown>; write: () => Promise<void> };
  logger: Logger;
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
  // A host with no local state asks the bucket about every path: what the bucket holds beside
  // the narinfos is read while Nix answers about the closure (wide area: four round trips).
  if (!req.dryRun && deps.cache.count() === 0) readAhead(deps);
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
  const hashParts = plan.candidates.map((i) => i.hashPart);
  // Read beside the presence check, when the local state leaves something to ask the bucket.
  // Asked of the presence database once per batch: a cached re-run of a large closure pays for it.
  const askBucket = needsBucket(hashParts, req, deps);
  const ledger = ledgerFor(hashParts, req, deps, askBucket);
  if (ledger !== undefined || (!req.dryRun && askBucket)) readAhead(deps);
  const { presence, pruned } = await presenceAndPrunes(hashParts, req, deps, askBucket);
  const forced = (i: PathInfo) => req.forceUpload?.has(i.hashPart) === true;
  if (ledger) await ledger;
  const resign = await reSignPresent(
    plan.candidates.filter((i) => !forced(i)),
    presence,
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
  const record = async () =>
    deps.signedLedger?.flush(presence.listedAll ? presence.etags : undefined, deps.signal);
  if (!req.dryRun && missing.length > 0) {
    await deps.cacheInfo?.check();
    // Written beside the first NARs; every narinfo waits for it (path-task.ts).
    deps.cacheInfo?.write().catch(() => undefined);
    const noLogsStored = presence.folders !== undefined && !presence.folders.has(LOG_FOLDER);
    await uploadMissing(missing, deps, report, { blocked: pruned.blocked, noLogsStored, record });
  }
  // Nothing to write when the record went out with the narinfos and nothing changed since.
  if (!req.dryRun) await record();
  report.complete = isComplete(req.paths, report, missing, req.dryRun);
  return report;
}

/**
 * What the cache has, minus what prunes on other hosts are taking away (src/upload/prune-guard.ts).
 * A batch that finds everything present commits nothing and skips the state listing, so a run the
 * presence cache answers still sends no request; one with uploads to do lists `.loft/` once, and
 * asks about presence again if that listing showed its presence rows may be stale.
 */
async function presenceAndPrunes(
  hashParts: string[],
  req: UploadRequest,
  deps: UploadClosureDeps,
  askBucket: boolean,
) {
  const ask = () =>
    checkPresence(hashParts, deps.cache, deps.store, {
      ...(req.ignoreLocalCache ? { ignoreLocal: true } : {}),
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
  const guard = deps.pruneGuard;
  const askedAt = guard?.now();
  // A batch that asks the bucket reads the prune state beside the presence check: either order is
  // safe (docs/architecture.md, "Several hosts, one bucket": a commit relies on a listing of
  // `.loft/` less than settle/2 old, whenever it was taken), and this one saves a round trip.
  const stateFirst = guard !== undefined && askBucket;
  if (stateFirst) guard.readAhead(deps.signal);
  let presence = await ask();
  const none = { absent: new Set<string>(), blocked: new Set<string>() };
  // Nothing to upload, nothing to guard; a forced upload (verify --repair) has something.
  const forcing = (req.forceUpload?.size ?? 0) > 0;
  if (!guard || askedAt === undefined || (presence.present.size === hashParts.length && !forcing)) {
    guard?.dropAhead();
    return { presence, pruned: none };
  }
  if (await guard.startBatch(askedAt, deps.signal)) {
    const first = presence.requests;
    presence = await ask();
    presence.requests += first;
  }
  const pruned = guard.classify(hashParts);
  for (const h of [...pruned.absent, ...pruned.blocked]) presence.present.delete(h);
  return { presence, pruned };
}

/**
 * The bucket's signed records (upload/signed-ledger.ts), loading, when this run signs and the
 * local state does not know every candidate to be present and signed by us: then the presence
 * check goes to the bucket, and so would re-sign.ts's GETs.
 */
function ledgerFor(hashParts: string[], req: UploadRequest, deps: UploadClosureDeps, askBucket: boolean) {
  const { signedLedger: ledger, signingKey } = deps;
  if (ledger === undefined || signingKey === undefined || req.dryRun || hashParts.length === 0) return;
  const known = !req.ignoreLocalCache && deps.cache.notSignedBy(hashParts, signerId(signingKey)).length === 0;
  if (known && !askBucket) return;
  return ledger.load(deps.signal);
}

/** The local presence cache leaves some of `hashParts` to ask the bucket about. */
function needsBucket(hashParts: string[], req: UploadRequest, deps: UploadClosureDeps): boolean {
  if (hashParts.length === 0) return false;
  return req.ignoreLocalCache === true || deps.cache.filterMissing(hashParts).length > 0;
}

/**
 * Starts the reads an upload that goes to the bucket makes anyway, so they overlap what comes
 * before them: nix-cache-info, the signed records and the prune state (all memoized; a failure
 * here is met again, and reported, where the result is awaited).
 */
function readAhead(deps: UploadClosureDeps): void {
  deps.cacheInfo?.check().catch(() => undefined);
  if (deps.signingKey !== undefined) void deps.signedLedger?.load(deps.signal);
  deps.pruneGuard?.readAhead(deps.signal);
}

/** In a run that signs, present paths must carry our signature (src/upload/re-sign.ts). */
async function reSignPresent(
  candidates: PathInfo[],
  presence: PresenceResult,
  req: UploadRequest,
  deps: UploadClosureDeps,
): Promise<ReSignResult> {
  if (deps.signingKey === undefined || req.dryRun) return { resigned: [], reupload: new Set(), requests: 0 };
  const found = candidates.filter((i) => presence.present.has(i.hashPart));
  return ensureSignedByUs(found, {
    store: deps.store,
    cache: deps.cache,
    storeDir: deps.storeDir,
    signingKey: deps.signingKey,
    logger: deps.logger,
    etags: presence.etags,
    ...(deps.signedLedger ? { ledger: deps.signedLedger } : {}),
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
 * Long NARs start first, largest first: the largest NAR is the longest single job, and started last
 * it would run alone at the end (Nix #15957 measured 117.7 s -> 47.2 s for a closure copied with
 * xz). The rest, given references first, start by the height of their referrers above them,
 * highest first (still references before referrers, since a reference stands at least one above
 * each referrer), so each layer's narinfos commit while the next layer's NARs still flow
 * (path-task.ts: a path's NAR turn ends before it waits for its references, so the wait never
 * deadlocks).
 * - Sorted by size, every NAR of a closure of many small paths was interleaved across its layers,
 *   and nearly every narinfo waited for the last NAR: over a 40 ms link the 300 commits left for
 *   the end (each one round trip, each layer after the one below) took 2.7 s in which the link was
 *   idle (bench/wan.bench.ts).
 * - In the references-first order of a depth-first walk, a leaf could still be among the last NARs,
 *   and every layer above it waited for it at the end: its narinfo, then its referrers', one round
 *   trip each. By height, the wide-area push's link idled a median of 200 ms between its first and
 *   last NAR byte, against 244 (docs/architecture.md, seventeenth round).
 */
export function largestFirst(infos: readonly PathInfo[], threads: number): PathInfo[] {
  const long = longNarBytes(infos, threads);
  const height = referrerHeights(infos);
  // Long NARs by size; the rest by height. Equal keys keep the order given (the sort is stable).
  const isLong = (i: PathInfo) => i.narSize > long;
  return [...infos].sort((a, b) => {
    if (isLong(a) || isLong(b)) return (isLong(b) ? b.narSize : 0) - (isLong(a) ? a.narSize : 0);
    return height.get(b.path)! - height.get(a.path)!;
  });
}

/**
 * For each path, the longest chain of referrers above it within `infos` (0 for a path nothing in
 * `infos` refers to): how many narinfos, one after another, wait for its narinfo. `infos` comes
 * references first, as planClosure orders a closure (a subset keeps that order); in another order
 * some heights come out low, which costs round trips at the end, never a wrong commit.
 */
export function referrerHeights(infos: readonly PathInfo[]): Map<string, number> {
  const height = new Map(infos.map((i) => [i.path, 0]));
  // Referrers before their references: each path's height is final before it raises its references'.
  for (const info of [...infos].reverse()) {
    const above = height.get(info.path)! + 1;
    for (const ref of info.references) {
      const h = height.get(ref);
      if (ref !== info.path && h !== undefined && h < above) height.set(ref, above);
    }
  }
  return height;
}

/**
 * The NAR size above which a NAR counts as a long job: more than a quarter of one upload thread's
 * share of the closure's NAR bytes (and never a small NAR, which is sent whole: upload-path.ts).
 * Started last, a shorter one keeps its thread busy for less than a quarter of what every thread
 * carries, while the others still have work.
 */
export function longNarBytes(infos: readonly PathInfo[], threads: number): number {
  const total = infos.reduce((n, i) => n + i.narSize, 0);
  return Math.max(SMALL_NAR_BYTES, total / (Math.max(1, threads) * 4));
}

/**
 * What uploadMissing is told: hash parts a prune is deleting, whether the cache stores no build log,
 * and how to write the signed record (upload/signed-ledger.ts) once every narinfo is written.
 */
interface MissingOptions {
  blocked: ReadonlySet<string>;
  noLogsStored: boolean;
  record: () => Promise<void>;
}

async function uploadMissing(
  missing: PathInfo[],
  deps: UploadClosureDeps,
  report: UploadReport,
  { blocked, noLogsStored, record }: MissingOptions,
): Promise<void> {
  const write = deps.cacheInfo?.write;
  const tasks = new PathTasks(write ? { ...deps, cacheInfoWritten: write } : deps, blocked);
  deps.progress?.planned(
    missing.length,
    missing.reduce((n, i) => n + i.narSize, 0),
    deps.uploadThreads,
  );
  const ordered = largestFirst(missing, deps.uploadThreads);
  const settled = tasks.start(ordered, { noLogsStored }).map((task, i) =>
    task.then(
      (uploaded) => void report.uploaded.push(uploaded),
      (err: unknown) => {
        const path = ordered[i]!.path;
        report.failed.push({
          path,
          code: err instanceof LoftError ? err.code : 'E_INTERNAL',
          message: oneLine(err),
        });
        deps.progress?.failed(path, err);
      },
    ),
  );
  // The record notes narinfos only, so it is written when the last one is, beside the build logs
  // written after the narinfos: after them, it was one more round trip in series at the end of
  // every run (bench/wan.bench.ts). A run whose target failed writes none (and so before).
  const recorded = tasks.committed().then(() => (tasks.fatal === undefined ? record() : undefined));
  try {
    await Promise.all(settled);
    await recorded;
  } finally {
    tasks.flush();
  }
  deps.progress?.done();
  if (tasks.fatal !== undefined) throw tasks.fatal;
}
