// The uploader's dependencies built from an open Runtime: shared by `--upload-path`/`--force-scan`
// and the daemon, so both upload the same way.
import { availableParallelism } from 'node:os';
import { NarMemory } from '../chunk-pool.js';
import { MemoryBudget } from '../memory-budget.js';
import { readBuildLog } from '../store/build-log.js';
import { dumpNar } from '../store/dump-nar.js';
import { realisationsFromNixDb } from '../store/realisations.js';
import { queryPathInfos } from '../store/path-info-query.js';
import { DEFAULTS } from '../config/defaults.js';
import { ConfigError } from '../errors.js';
import type { NixCacheInfo } from '../format/nix-cache-info.js';
import { checkNixCacheInfo, writeNixCacheInfo } from '../upload/cache-info.js';
import { ComputePool, ZSTD_FRAME_BYTES } from '../upload/compute-pool.js';
import { NarWorkers, WORKER_NAR_BYTES } from '../upload/nar-workers.js';
import { BODY_EXEMPT_BYTES } from '../upload/nar-turns.js';
import { PathExtras } from '../upload/path-extras.js';
import { PruneGuard } from '../upload/prune-guard.js';
import { signerId } from '../upload/re-sign.js';
import { SignedLedger } from '../upload/signed-ledger.js';
import type { ProgressSink } from '../upload/progress.js';
import type { UploadClosureDeps } from '../upload/upload-closure.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Runtime, RuntimeUploads } from './runtime.js';
import { isThreadCount, THREAD_COUNT } from '../thread-count.js';

export interface UploadDepsOptions {
  progress?: ProgressSink;
  signal?: AbortSignal;
  /**
   * A long-running uploader (the daemon, --watch-exec) rewrites its signed record at most this
   * often (upload/signed-ledger.ts); a one-shot run writes it at the end of its batch.
   */
  signedRecordEveryMs?: number;
}

export function buildUploadDeps(rt: Runtime, opts: UploadDepsOptions = {}): UploadClosureDeps {
  const c = rt.config;
  const signedLedger = ledgerOf(rt, opts);
  return {
    store: rt.store,
    cache: rt.cache,
    queryPathInfos: (ps) =>
      queryPathInfos(ps, {
        recursive: true,
        nixDb: true,
        storeDir: c.storeDir,
        ...(opts.signal ? { signal: opts.signal } : {}),
      }),
    dumpNar: (p, memory, onEntry) => dumpNar(p, memory, onEntry),
    extras: new PathExtras({
      store: rt.store,
      signingKey: c.signingKey,
      settings: c.extras,
      readBuildLog: (drv) => readBuildLog(drv),
      readRealisations: (ps) => realisationsFromNixDb(ps, { storeDir: c.storeDir }),
      logger: rt.logger,
      logsDone: shared(rt).logsDone,
      ...(opts.signal ? { signal: opts.signal } : {}),
    }),
    compression: c.compression,
    compressionLevel: c.compressionLevel,
    // xz: one thread per stream, since uploads run side by side anyway. zstd: frames share the
    // runtime's compute pool.
    compressionThreads: 1,
    computePool: shared(rt).computePool,
    narWorkers: shared(rt).narWorkers,
    narMemory: shared(rt).narMemory,
    bodyMemory: { budget: shared(rt).memoryBudget, exempt: BODY_EXEMPT_BYTES },
    ...(rt.multipart ? { multipart: rt.multipart } : {}),
    storeDir: c.storeDir,
    signingKey: c.signingKey,
    uploadThreads: uploadConcurrency(c.compression, c.uploadThreads),
    skipSignedByKeys: c.skipSignedByKeys,
    uploadDerivations: c.uploadDerivations,
    cacheInfo: { check: () => cacheInfoChecked(rt), write: () => cacheInfoOnce(rt) },
    logger: rt.logger,
    pruneGuard: shared(rt).pruneGuard,
    ...(signedLedger ? { signedLedger } : {}),
    ...(opts.progress ? { progress: opts.progress } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
}

/**
 * xz needs about 110 MB per stream and is CPU-bound at a few MB/s, so more xz streams than cores only
 * cost memory; zstd streams are small and fast, and uploads wait on the network.
 */
export function uploadConcurrency(compression: string, uploadThreads: number): number {
  return compression === 'xz' ? Math.max(1, Math.min(uploadThreads, availableParallelism())) : uploadThreads;
}

/**
 * What the NAR reader's pools may keep. To a store that holds bodies in the budget (S3's parts), an
 * eighth of it: the rest is for the bodies. A directory or an HTTP cache holds none (a body is
 * written or streamed as it comes), so the reader may keep all that the frames leave: with an
 * eighth, a run to a directory took most of its reads and zstd output slabs fresh (on the bench
 * closure, 113 reads of 1 MiB and 66 slabs of 4.5 MiB, about 440 MiB), garbage that started a
 * full collection every 150 ms or so.
 */
export function readerShare(store: Pick<ObjectStore, 'bufferedPerUpload'>, budget: MemoryBudget): number {
  // Asked about a NAR of 1 GiB: a store that buffers bodies holds some of any large one.
  const holdsBodies = (store.bufferedPerUpload?.(2 ** 30) ?? 0) > 0;
  return holdsBodies ? Math.floor(budget.total / 8) : budget.free;
}

/** The runtime's upload state (cli/runtime.ts, RuntimeUploads), made at its first upload. */
function shared(rt: Runtime): RuntimeUploads {
  const c = rt.config;
  if (rt.uploads) return rt.uploads;
  // Reservations first, so bodies get what is left (src/memory-budget.ts): frames at most half the
  // budget (at least one), the reader's pool at most an eighth; at least 3/8 stay for S3 bodies.
  const memoryBudget = new MemoryBudget(c.memoryBudgetBytes);
  const frames = Math.max(
    1,
    Math.min(computeThreads(process.env), Math.floor(c.memoryBudgetBytes / 2 / ZSTD_FRAME_BYTES)),
  );
  const computePool = new ComputePool(frames, ZSTD_FRAME_BYTES, memoryBudget);
  const workersLog = rt.logger.child({ component: 'nar-workers' });
  rt.uploads = {
    memoryBudget,
    computePool,
    // After the frames, before the reader: a worker's buffer stands in for the frame and reads its
    // NAR would otherwise have taken on the streaming path.
    narWorkers: new NarWorkers(
      narWorkerThreads(process.env, computePool.threads),
      WORKER_NAR_BYTES,
      memoryBudget,
      (path, why) => workersLog.debug({ path, why }, 'NAR streams instead'),
    ),
    narMemory: new NarMemory(memoryBudget, readerShare(rt.store, memoryBudget)),
    logsDone: new Set(),
    pruneGuard: new PruneGuard({
      store: rt.store,
      cache: rt.cache,
      logger: rt.logger.child({ component: 'prune-guard' }),
      // A host that does not prune still respects the protocol, with the default grace unless a
      // pruner announced a shorter one in the bucket.
      graceMs: (c.prune.graceHours > 0 ? c.prune.graceHours : DEFAULTS.pruneGraceHours) * 3_600_000,
    }),
  };
  return rt.uploads;
}

/** The runtime's signed-record ledger (S3 only), made at its first signing upload. */
function ledgerOf(rt: Runtime, opts: UploadDepsOptions): SignedLedger | undefined {
  const s = shared(rt);
  const key = rt.config.signingKey;
  // Only S3 answers with ETags; a directory or an HTTP cache would only cost the records' reads.
  if (key === undefined || rt.config.storage.kind !== 's3') return undefined;
  s.signedLedger ??= new SignedLedger({
    store: rt.store,
    publicKey: signerId(key),
    logger: rt.logger.child({ component: 'signed-records' }),
    minFlushIntervalMs: opts.signedRecordEveryMs ?? 0,
    // A daemon learns other hosts' records again now and then; a one-shot run reads them once.
    reloadAfterMs: opts.signedRecordEveryMs ?? Infinity,
  });
  return s.signedLedger;
}

/**
 * The bucket's nix-cache-info, read (and the bucket refused if it serves another store) before a
 * runtime's first NAR, written when needed before its first narinfo, and not again: it does not
 * change under a running loft. A failed read or write is forgotten, so the next batch tries again.
 */
function cacheInfoChecked(rt: Runtime): Promise<NixCacheInfo | undefined> {
  const s = shared(rt);
  if (s.cacheInfoCheck) return s.cacheInfoCheck;
  const checked = checkNixCacheInfo(rt.store, { storeDir: rt.config.storeDir, priority: rt.config.priority });
  checked.catch(() => {
    if (s.cacheInfoCheck === checked) delete s.cacheInfoCheck;
  });
  s.cacheInfoCheck = checked;
  return checked;
}

function cacheInfoOnce(rt: Runtime): Promise<void> {
  const s = shared(rt);
  if (s.cacheInfo) return s.cacheInfo;
  const done = cacheInfoChecked(rt).then(async (info) => {
    if (info !== undefined) await writeNixCacheInfo(rt.store, info);
  });
  done.catch(() => {
    if (s.cacheInfo === done) delete s.cacheInfo;
    delete s.cacheInfoCheck;
  });
  s.cacheInfo = done;
  return done;
}

/** The variable that sets how many worker threads make whole middle-sized NARs (0: none). */
export const NAR_WORKERS_ENV = 'LOFT_NAR_WORKERS';

/**
 * As many workers as the compute pool has threads by default. The variable exists to measure what
 * the workers buy (bench/pipeline.bench.ts) and to keep a run on the streaming path alone; like
 * LOFT_COMPUTE_THREADS it tunes the machine, not the cache.
 */
export function narWorkerThreads(env: NodeJS.ProcessEnv, byDefault: number): number {
  const raw = env[NAR_WORKERS_ENV];
  if (raw === undefined || raw.trim() === '') return byDefault;
  const n = Number(raw.trim());
  if (n !== 0 && !isThreadCount(n)) {
    throw new ConfigError(
      `${NAR_WORKERS_ENV}=${raw.trim()} is not a whole number from 0 to ${THREAD_COUNT.max}: set a worker count or unset it`,
    );
  }
  return n;
}

/** The variable that sizes the compute pool (zstd frames compressing at once). */
export const COMPUTE_THREADS_ENV = 'LOFT_COMPUTE_THREADS';

/**
 * One thread per available core by default. The variable exists to measure what the pool buys
 * (bench/upload.bench.ts runs one large NAR with 1) and to leave cores to other work on a shared
 * machine; it is not a config key because it tunes this machine, not the cache.
 */
export function computeThreads(env: NodeJS.ProcessEnv): number {
  const raw = env[COMPUTE_THREADS_ENV];
  if (raw === undefined || raw.trim() === '') return availableParallelism();
  const n = Number(raw.trim());
  if (!isThreadCount(n)) {
    throw new ConfigError(
      `${COMPUTE_THREADS_ENV}=${raw.trim()} is not a whole number from ${THREAD_COUNT.min} to ${THREAD_COUNT.max}: set a thread count or unset it`,
    );
  }
  return n;
}
