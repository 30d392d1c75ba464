// The daemon's numbers in the Prometheus text exposition format (version 0.0.4), written by hand:
// five counters, a few gauges, no labels but `result`, so no client library is worth its weight.
//   # HELP <name> <text>
//   # TYPE <name> counter|gauge
//   <name> <value>
// Counters count since the daemon started (Prometheus handles the reset at a restart); gauges are
// read when scraped (the queue from the database, so paths queued by `--enqueue` show at once).
import type { UploadReport } from '../upload/upload-closure.js';
import type { AccessState } from './access-state.js';

export interface QueueGauges {
  pending: number;
  parked: number;
  /** Of `pending`, the paths the store scan queued (src/state/queue.ts's backlog lane). */
  backlog?: number;
}

export interface PruneRecord {
  /** When it finished, ms since the epoch. */
  at: number;
  ok: boolean;
  deletedPaths: number;
}

export class DaemonMetrics {
  uploadedPaths = 0;
  uploadedNarBytes = 0;
  uploadedFileBytes = 0;
  /** Paths whose upload failed (each try counts: a path retried three times counts three). */
  failedPaths = 0;
  /** Batches that failed as a whole (bucket unreachable, Nix missing). */
  failedBatches = 0;
  lastPrune: PruneRecord | undefined;
  /** Whether the object store accepts loft (src/daemon/access-state.ts); absent: assumed yes. */
  access: AccessState | undefined;

  recordBatch(report: UploadReport): void {
    this.uploadedPaths += report.uploaded.length;
    for (const u of report.uploaded) {
      this.uploadedNarBytes += u.narSize;
      this.uploadedFileBytes += u.fileSize;
    }
    this.failedPaths += report.failed.length;
  }

  render(queue: QueueGauges): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, value: number) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    };
    metric('loft_queue_paths', 'gauge', 'Store paths waiting in the upload queue.', queue.pending);
    if (queue.backlog !== undefined) {
      const help = 'Of loft_queue_paths, those the store scan queued, waiting behind new builds.';
      metric('loft_queue_scan_backlog_paths', 'gauge', help, queue.backlog);
    }
    metric('loft_parked_paths', 'gauge', 'Store paths parked after repeated failures.', queue.parked);
    metric(
      'loft_uploaded_paths_total',
      'counter',
      'Store paths uploaded (narinfo written).',
      this.uploadedPaths,
    );
    metric(
      'loft_uploaded_nar_bytes_total',
      'counter',
      'NAR bytes of the uploaded paths.',
      this.uploadedNarBytes,
    );
    metric(
      'loft_uploaded_file_bytes_total',
      'counter',
      'Compressed bytes stored for the uploaded paths.',
      this.uploadedFileBytes,
    );
    metric(
      'loft_upload_failures_total',
      'counter',
      'Failed upload attempts of single paths.',
      this.failedPaths,
    );
    metric(
      'loft_upload_batch_failures_total',
      'counter',
      'Upload batches that failed as a whole (bucket or Nix unreachable).',
      this.failedBatches,
    );
    const lost = this.access?.lost;
    metric(
      'loft_storage_access_ok',
      'gauge',
      '1 while the object store accepts loft, 0 while it refuses it (credentials, bucket, permissions).',
      lost === undefined ? 1 : 0,
    );
    metric(
      'loft_storage_access_lost_since_timestamp_seconds',
      'gauge',
      'When the object store started refusing loft (0: it does not).',
      lost === undefined ? 0 : lost.since / 1000,
    );
    metric(
      'loft_storage_access_lost_total',
      'counter',
      'Times the object store started refusing loft.',
      this.access?.lostCount ?? 0,
    );
    const p = this.lastPrune;
    metric(
      'loft_last_prune_timestamp_seconds',
      'gauge',
      'When the last scheduled prune finished (0: none since start).',
      p ? p.at / 1000 : 0,
    );
    metric(
      'loft_last_prune_success',
      'gauge',
      '1 if the last scheduled prune succeeded, 0 if it failed or none ran.',
      p?.ok ? 1 : 0,
    );
    metric(
      'loft_last_prune_deleted_paths',
      'gauge',
      'Paths the last scheduled prune deleted.',
      p?.deletedPaths ?? 0,
    );
    return lines.join('\n') + '\n';
  }
}
