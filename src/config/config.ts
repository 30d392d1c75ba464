// The Config the rest of loft reads, once loft.toml and the environment are validated (schema.ts)
// and its secrets read (load.ts). Types only, so the section readers and schema.ts can share them
// without importing one another.
import type { Compression, LogCompression } from '../format/bucket-layout.js';
import type { SecretKey } from '../format/signing-key.js';
import type { StorageSettings } from '../storage/settings.js';
import type { ListenAddress } from './metrics-listen.js';

export type { Compression } from '../format/bucket-layout.js';
export type { S3Settings, StorageSettings } from '../storage/settings.js';

export interface PruneSettings {
  enabled: boolean;
  retentionDays: number;
  maxSizeGb?: number;
  targetPercentage: number;
  /** Validated by parsePruneSchedule (src/prune/schedule-syntax.ts). */
  schedule?: string;
  orphanGraceHours: number;
  /** Hours from mark to doom and from a narinfo's deletion to its NAR's; 0: delete at once. */
  graceHours: number;
}

export interface Config {
  /** Absolute path of the file read; undefined when the embedded default is used. */
  configPath?: string;
  storeDir: string;
  storage: StorageSettings;
  uploadThreads: number;
  scanOnStartup: boolean;
  populateCacheOnStartup: boolean;
  localCachePath: string;
  compression: Compression;
  /** zstd 1-19 (default 3), xz 0-9 (default 6), 0 for none. */
  compressionLevel: number;
  /** Accepted for compatibility with the original; loft always streams. */
  useDiskForLargeNars: boolean;
  largeNarThresholdMb: number;
  signingKey?: SecretKey;
  signingKeyPath?: string;
  skipSignedByKeys: string[];
  uploadDerivations: boolean;
  priority: number;
  prune: PruneSettings;
  /** Extras uploaded with each path: build logs (default on), NAR listings, debug-info index (off). */
  extras: {
    uploadLogs: boolean;
    writeNarListing: boolean;
    indexDebugInfo: boolean;
    /** `log_compression`: the Content-Encoding build logs are sent with. */
    logCompression: LogCompression;
  };
  /** What the daemon publishes as this host's roots (symlinks into the store, or directories of them). */
  publishRoots: string[];
  /** loft.memory_budget: bytes loft may buffer on purpose (src/memory-budget.ts). */
  memoryBudgetBytes: number;
  /**
   * loft.fresh_start_after_uploads: once idle after this many uploads since it started, the daemon
   * executes itself afresh to give back what the uploads left in its memory (cli/fresh-start.ts); 0: never.
   */
  freshStartAfterUploads: number;
  /** loft.metrics_listen: where the daemon serves Prometheus metrics; undefined: no metrics. */
  metricsListen?: ListenAddress;
  debug: boolean;
}

export interface LoadResult {
  config: Config;
  warnings: string[];
}
