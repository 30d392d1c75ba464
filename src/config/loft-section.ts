// The [loft] table: behaviour of the uploader. Every key of the original Loft's README and NixOS
// module is here with the same meaning; compression "none", compression_level, upload_derivations,
// priority, prune_orphan_grace_hours and prune_grace_hours are loft's additions. use_disk_for_large_nars and
// large_nar_threshold_mb are accepted for compatibility only: loft streams every NAR, whatever its size.
import { resolve } from 'node:path';
import { COMPRESSION_LEVELS, DEFAULTS, LIMITS } from './defaults.js';
import { parsePruneSchedule, PRUNE_SCHEDULE_SYNTAX } from '../prune/schedule-syntax.js';
import type { Compression, Config, PruneSettings } from './config.js';
import { LOG_COMPRESSIONS } from '../format/bucket-layout.js';
import { METRICS_LISTEN_SYNTAX, parseListenAddress } from './metrics-listen.js';
import type { TableReader } from './table-reader.js';
import { BYTE_SIZE_SYNTAX, parseByteSize } from './byte-size.js';

export const LOFT_KEYS = [
  'upload_threads',
  'scan_on_startup',
  'populate_cache_on_startup',
  'local_cache_path',
  'compression',
  'compression_level',
  'use_disk_for_large_nars',
  'large_nar_threshold_mb',
  'signing_key_path',
  'signing_key_name',
  'skip_signed_by_keys',
  'upload_derivations',
  'priority',
  'prune_enabled',
  'prune_retention_days',
  'prune_max_size_gb',
  'prune_target_percentage',
  'prune_schedule',
  'prune_orphan_grace_hours',
  'metrics_listen',
  'prune_grace_hours',
  'publish_roots',
  'upload_logs',
  'write_nar_listing',
  'index_debug_info',
  'log_compression',
  'memory_budget',
  'fresh_start_after_uploads',
] as const;

export const COMPRESSIONS: readonly Compression[] = ['zstd', 'xz', 'none'];

/** The settings of [loft]; the signing key itself is read by the loader. */
export type LoftSettings = Omit<Config, 'configPath' | 'storeDir' | 'storage' | 'debug' | 'signingKey'>;

export interface LoftSection {
  settings: LoftSettings;
  /** signing_key_name as written; the loader checks it against the key file's own name. */
  signingKeyName?: string;
}

/** localCachePath is '' when the file does not set it: the default depends on the target (schema.ts). */
export function readLoftSection(r: TableReader, baseDir: string): LoftSection {
  const { uploadThreads: threads, largeNarThresholdMb: large, priority } = LIMITS;
  const compression = r.oneOf('compression', COMPRESSIONS) ?? DEFAULTS.compression;
  const localCachePath = r.string('local_cache_path', { nonEmpty: true });
  const settings: LoftSettings = {
    uploadThreads: r.int('upload_threads', threads.min, threads.max) ?? DEFAULTS.uploadThreads,
    scanOnStartup: r.bool('scan_on_startup') ?? DEFAULTS.scanOnStartup,
    populateCacheOnStartup: r.bool('populate_cache_on_startup') ?? DEFAULTS.populateCacheOnStartup,
    // Relative to the config file's directory, so the result does not depend on where loft starts.
    localCachePath: localCachePath === undefined ? '' : resolve(baseDir, localCachePath),
    compression,
    compressionLevel: readCompressionLevel(r, compression),
    useDiskForLargeNars: r.bool('use_disk_for_large_nars') ?? DEFAULTS.useDiskForLargeNars,
    largeNarThresholdMb:
      r.int('large_nar_threshold_mb', large.min, large.max) ?? DEFAULTS.largeNarThresholdMb,
    skipSignedByKeys: r.stringArray('skip_signed_by_keys') ?? [...DEFAULTS.skipSignedByKeys],
    uploadDerivations: r.bool('upload_derivations') ?? DEFAULTS.uploadDerivations,
    priority: r.int('priority', priority.min, priority.max) ?? DEFAULTS.priority,
    prune: readPrune(r),
    publishRoots: readPublishRoots(r),
    memoryBudgetBytes: readMemoryBudget(r),
    freshStartAfterUploads:
      r.int('fresh_start_after_uploads', 0, LIMITS.freshStartAfterUploads.max) ??
      DEFAULTS.freshStartAfterUploads,
    extras: {
      uploadLogs: r.bool('upload_logs') ?? DEFAULTS.uploadLogs,
      writeNarListing: r.bool('write_nar_listing') ?? DEFAULTS.writeNarListing,
      indexDebugInfo: r.bool('index_debug_info') ?? DEFAULTS.indexDebugInfo,
      logCompression: r.oneOf('log_compression', LOG_COMPRESSIONS) ?? DEFAULTS.logCompression,
    },
  };
  const metrics = r.string('metrics_listen');
  if (metrics !== undefined) {
    const address = parseListenAddress(metrics);
    if (address === undefined) r.fail('metrics_listen', METRICS_LISTEN_SYNTAX, metrics);
    else settings.metricsListen = address;
  }
  const section: LoftSection = { settings };
  const keyPath = r.string('signing_key_path', { nonEmpty: true });
  const keyName = r.string('signing_key_name', { nonEmpty: true });
  if (keyPath !== undefined) settings.signingKeyPath = resolve(baseDir, keyPath);
  if (keyName !== undefined) section.signingKeyName = keyName;
  if (keyName !== undefined && !r.has('signing_key_path')) {
    r.errors.push(
      `${r.key('signing_key_name')}: set without ${r.key('signing_key_path')}; ` +
        'the name comes from the key file, so give the key file (or remove the name)',
    );
  }
  return section;
}

function readCompressionLevel(r: TableReader, compression: Compression): number {
  const range = COMPRESSION_LEVELS[compression];
  if (compression === 'none') {
    r.raw('compression_level'); // meaningless without a compressor: accepted and ignored
    return range.default;
  }
  return r.int('compression_level', range.min, range.max) ?? range.default;
}

function readPrune(r: TableReader): PruneSettings {
  const { pruneRetentionDays: days, pruneMaxSizeGb: size } = LIMITS;
  const { pruneTargetPercentage: pct, pruneOrphanGraceHours: grace } = LIMITS;
  const prune: PruneSettings = {
    enabled: r.bool('prune_enabled') ?? DEFAULTS.pruneEnabled,
    retentionDays: r.int('prune_retention_days', days.min, days.max) ?? DEFAULTS.pruneRetentionDays,
    targetPercentage: r.int('prune_target_percentage', pct.min, pct.max) ?? DEFAULTS.pruneTargetPercentage,
    orphanGraceHours:
      r.int('prune_orphan_grace_hours', grace.min, grace.max) ?? DEFAULTS.pruneOrphanGraceHours,
    graceHours: readGraceHours(r),
  };
  const maxSizeGb = r.positiveNumber('prune_max_size_gb', size.max);
  if (maxSizeGb !== undefined) prune.maxSizeGb = maxSizeGb;
  const schedule = r.string('prune_schedule');
  if (schedule !== undefined) {
    if (parsePruneSchedule(schedule) === undefined) r.fail('prune_schedule', PRUNE_SCHEDULE_SYNTAX, schedule);
    else prune.schedule = schedule;
  }
  return prune;
}

/** Fractions allowed (tests and small setups use minutes); 0 turns mark/sweep off. */
function readGraceHours(r: TableReader): number {
  const value = r.raw('prune_grace_hours');
  const { max } = LIMITS.pruneGraceHours;
  if (value === undefined) return DEFAULTS.pruneGraceHours;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= max) return value;
  r.fail('prune_grace_hours', `a number of hours from 0 to ${max} (fractions allowed)`, value);
  return DEFAULTS.pruneGraceHours;
}

/** A size with a unit ("192MiB"), within LIMITS.memoryBudgetBytes. */
function readMemoryBudget(r: TableReader): number {
  const { min, max } = LIMITS.memoryBudgetBytes;
  const value = r.raw('memory_budget');
  if (value === undefined) return DEFAULTS.memoryBudgetBytes;
  const bytes = typeof value === 'string' ? parseByteSize(value) : undefined;
  if (bytes !== undefined && bytes >= min && bytes <= max) return bytes;
  r.fail('memory_budget', `${BYTE_SIZE_SYNTAX}, from ${min / 2 ** 20}MiB to ${max / 2 ** 30}GiB`, value);
  return DEFAULTS.memoryBudgetBytes;
}

/** Absolute paths only: they name this machine's roots, wherever the config file lives. */
function readPublishRoots(r: TableReader): string[] {
  const roots = r.stringArray('publish_roots');
  if (roots === undefined) return [...DEFAULTS.publishRoots];
  const relative = roots.find((p) => !p.startsWith('/'));
  if (relative !== undefined) r.fail('publish_roots', 'a list of absolute paths', relative);
  return roots;
}
