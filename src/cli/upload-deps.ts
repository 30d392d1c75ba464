// The uploader's dependencies built from an open Runtime: shared by `--upload-path`/`--force-scan`
// and the daemon, so both upload the same way.
import { availableParallelism } from 'node:os';
import { dumpNar } from '../store/dump-nar.js';
import { queryPathInfos } from '../store/path-info-query.js';
import { ConfigError } from '../errors.js';
import { ensureNixCacheInfo } from '../upload/cache-info.js';
import { ComputePool } from '../upload/compute-pool.js';
import type { ProgressSink } from '../upload/progress.js';
import type { UploadClosureDeps } from '../upload/upload-closure.js';
import type { Runtime } from './runtime.js';

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
        storeDir: c.storeDir,
        ...(opts.signal ? { signal: opts.signal } : {}),
      }),
    dumpNar: (p) => dumpNar(p),
    compression: c.compression,
    compressionLevel: c.compressionLevel,
    // One thread per stream: uploads run side by side anyway, and each multi-threaded zstd context
    // costs 40-50 MB and blocks the event loop while it waits for its workers (bench/upload.bench.ts).
    compressionThreads: 1,
    computePool: new ComputePool(computeThreads(process.env)),
    storeDir: c.storeDir,
    signingKey: c.signingKey,
    uploadThreads: uploadConcurrency(c.compression, c.uploadThreads),
    skipSignedByKeys: c.skipSignedByKeys,
    uploadDerivations: c.uploadDerivations,
    beforeFirstUpload: async () => {
      await ensureNixCacheInfo(rt.store, { storeDir: c.storeDir, priority: c.priority });
    },
    logger: rt.logger,
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
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new ConfigError(
      `${COMPUTE_THREADS_ENV}=${raw.trim()} is not a whole number from 1 to 256: set a thread count or unset it`,
    );
  }
  return n;
}
