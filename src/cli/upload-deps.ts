// The uploader's dependencies built from an open Runtime: shared by `--upload-path`/`--force-scan`
// and the daemon, so both upload the same way.
import { availableParallelism } from 'node:os';
import { dumpNar } from '../store/dump-nar.js';
import { queryPathInfos } from '../store/path-info-query.js';
import { DEFAULTS } from '../config/defaults.js';
import { ConfigError } from '../errors.js';
import { ensureNixCacheInfo } from '../upload/cache-info.js';
import { ComputePool } from '../upload/compute-pool.js';
import { PruneGuard } from '../upload/prune-guard.js';
import type { ProgressSink } from '../upload/progress.js';
import type { UploadClosureDeps } from '../upload/upload-closure.js';
import type { Runtime } from './runtime.js';
import { isThreadCount, THREAD_COUNT } from '../thread-count.js';

export interface UploadDepsOptions {
  progress?: ProgressSink;
  signal?: AbortSignal;
}

export function buildUploadDeps(rt: Runtime, opts: UploadDepsOptions = {}): UploadClosureDeps {
  const c = rt.config;
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
    dumpNar: (p) => dumpNar(p),
    compression: c.compression,
    compressionLevel: c.compressionLevel,
    // xz: one thread per stream, since uploads run side by side anyway. zstd: frames share the
    // runtime's compute pool.
    compressionThreads: 1,
    computePool: shared(rt).computePool,
    storeDir: c.storeDir,
    signingKey: c.signingKey,
    uploadThreads: uploadConcurrency(c.compression, c.uploadThreads),
    ...bodyMemoryOf(c),
    skipSignedByKeys: c.skipSignedByKeys,
    uploadDerivations: c.uploadDerivations,
    beforeFirstUpload: () => cacheInfoOnce(rt),
    logger: rt.logger,
    pruneGuard: shared(rt).pruneGuard,
    ...(opts.progress ? { progress: opts.progress } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
}

/**
 * An S3 body is held a part at a time: the first part read ahead (to choose one PUT or multipart),
 * then lib-storage's part being filled and its two in flight, so about four parts per large NAR.
 * With the largest NARs starting first, twelve upload threads would hold 48 parts at once (384 MiB
 * at the default 8 MiB parts, 3 GiB at 64 MiB). NAR bodies to S3 therefore share a budget of
 * S3_BODY_BUDGET bytes (or one body, if a body is larger): three large NARs at a time at the
 * default part size, any number of NARs under 1 MiB. A directory target streams and needs none.
 */
export function bodyMemoryOf(c: Runtime['config']): Pick<UploadClosureDeps, 'bodyMemory'> {
  if (c.storage.kind !== 's3') return {};
  const perBody = 4 * c.storage.s3.partSizeMb * 1024 * 1024;
  return { bodyMemory: { budget: Math.max(S3_BODY_BUDGET, perBody), perBody, exempt: 1024 * 1024 } };
}
const S3_BODY_BUDGET = 96 * 1024 * 1024;

/**
 * xz needs about 110 MB per stream and is CPU-bound at a few MB/s, so more xz streams than cores only
 * cost memory; zstd streams are small and fast, and uploads wait on the network.
 */
export function uploadConcurrency(compression: string, uploadThreads: number): number {
  return compression === 'xz' ? Math.max(1, Math.min(uploadThreads, availableParallelism())) : uploadThreads;
}

/**
 * What one runtime's uploads share, however many times its deps are built (the daemon and
 * --watch-exec build them once per batch): the compute pool, so memory stays bounded across
 * batches; the prune guard, so the state objects it has read are not fetched again for every
 * batch; and the nix-cache-info write.
 */
interface RuntimeShared {
  computePool: ComputePool;
  pruneGuard: PruneGuard;
  cacheInfo?: Promise<void>;
}

const sharedByRuntime = new WeakMap<Runtime, RuntimeShared>();

function shared(rt: Runtime): RuntimeShared {
  let s = sharedByRuntime.get(rt);
  if (!s) {
    const c = rt.config;
    s = {
      computePool: new ComputePool(computeThreads(process.env)),
      pruneGuard: new PruneGuard({
        store: rt.store,
        cache: rt.cache,
        logger: rt.logger.child({ component: 'prune-guard' }),
        // A host that does not prune still respects the protocol, with the default grace unless a
        // pruner announced a shorter one in the bucket.
        graceMs: (c.prune.graceHours > 0 ? c.prune.graceHours : DEFAULTS.pruneGraceHours) * 3_600_000,
      }),
    };
    sharedByRuntime.set(rt, s);
  }
  return s;
}

/**
 * The bucket's nix-cache-info, written before a runtime's first upload and not again: it does not
 * change under a running loft. A failed write is forgotten, so the next batch tries again.
 */
function cacheInfoOnce(rt: Runtime): Promise<void> {
  const s = shared(rt);
  if (s.cacheInfo) return s.cacheInfo;
  const done = ensureNixCacheInfo(rt.store, {
    storeDir: rt.config.storeDir,
    priority: rt.config.priority,
  }).then(() => undefined);
  done.catch(() => {
    if (s.cacheInfo === done) delete s.cacheInfo;
  });
  s.cacheInfo = done;
  return done;
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
