// Default values of every setting, in one place so the loader, loft.toml.example and the tests agree.
// Where the original Loft's binary and its NixOS module disagree, loft follows the module (the
// configuration most users run): 12 upload threads, scan on startup, skip paths signed by the two
// big public caches.

import { BACKOFF } from '../backoff.js';
import { defaultMemoryBudgetBytes } from '../memory-budget.js';
import { THREAD_COUNT } from '../thread-count.js';

export const DEFAULTS = {
  configFile: 'loft.toml',
  storeDir: '/nix/store',
  /** The embedded default's local binary cache, relative to the working directory. */
  localDir: 'loft-cache',
  region: 'us-east-1',
  // Garage and MinIO, the original's targets, want path-style URLs; AWS accepts both.
  forcePathStyle: true,
  partSizeMb: 8,
  /** Tries per S3 request: the request backoff policy's own default. */
  maxAttempts: BACKOFF.request.maxAttempts,
  // How long an S3 request may go without a byte moving either way before it is retried.
  requestTimeoutSecs: 300,
  uploadThreads: 12,
  scanOnStartup: true,
  populateCacheOnStartup: false,
  compression: 'zstd',
  useDiskForLargeNars: true,
  largeNarThresholdMb: 1024,
  skipSignedByKeys: ['cache.nixos.org-1', 'nix-community.cachix.org-1'],
  uploadDerivations: false,
  // The original writes `Priority: 30` into nix-cache-info (cache.nixos.org uses 40).
  priority: 30,
  pruneEnabled: false,
  pruneRetentionDays: 30,
  pruneTargetPercentage: 80,
  pruneOrphanGraceHours: 24,
  // Mark to doom, and narinfo to NAR deletion, on a bucket shared by hosts (README, Pruning).
  pruneGraceHours: 24,
  // As niks3 does: `nix log --store` works for what loft pushed. Listings and the debug-info index
  // are off by default, as Nix's write-nar-listing and index-debug-info are.
  uploadLogs: true,
  writeNarListing: false,
  indexDebugInfo: false,
  // Not every Nix decodes a compressed log (Nix's own log-compression is off by default too).
  logCompression: 'none',
  // Off unless asked for: publishing writes to the bucket every few hours (README, Pruning).
  publishRoots: [] as string[],
  // What loft buffers on purpose (zstd frames, NAR reads, S3 parts), by this machine's cores:
  // src/memory-budget.ts.
  memoryBudgetBytes: defaultMemoryBudgetBytes(),
  // The daemon executes itself afresh once idle after this many uploads (cli/fresh-start.ts); 0: never.
  freshStartAfterUploads: 5000,
} as const;

/** Levels each compressor accepts and its default (zstd's CLI default 3, xz's preset 6). */
export { COMPRESSION_LEVELS } from '../format/bucket-layout.js';

/** Bounds of numeric settings, shared by validation messages and tests. */
export const LIMITS = {
  uploadThreads: THREAD_COUNT,
  // 5 MiB is S3's minimum part size (except the last part); 5 GiB its maximum.
  partSizeMb: { min: 5, max: 5120 },
  maxAttempts: { min: 1, max: 20 },
  requestTimeoutSecs: { min: 1, max: 3600 },
  largeNarThresholdMb: { min: 1, max: 1_048_576 },
  priority: { min: 0, max: 10_000 },
  pruneRetentionDays: { min: 1, max: 36_500 },
  pruneMaxSizeGb: { max: 1_000_000 },
  pruneTargetPercentage: { min: 1, max: 99 },
  pruneOrphanGraceHours: { min: 0, max: 8760 },
  pruneGraceHours: { min: 0, max: 8760 },
  // A zstd frame and one S3 upload's four 8 MiB parts fit (upload/compute-pool.ts); 64 GiB is far beyond any use.
  memoryBudgetBytes: { min: 48 * 1024 * 1024, max: 64 * 1024 ** 3 },
  freshStartAfterUploads: { max: 1_000_000_000 },
} as const;
