// The daemon's uploader as the metrics see it: every batch's outcome is counted on its way back to
// the worker, so /metrics reports uploads without the upload pipeline knowing about Prometheus.
import type { DaemonMetrics } from './metrics.js';
import type { UploadBatch } from './worker.js';

export function countedUploads(upload: UploadBatch, metrics: DaemonMetrics): UploadBatch {
  return async (paths, signal) => {
    try {
      const report = await upload(paths, signal);
      metrics.recordBatch(report);
      return report;
    } catch (err) {
      // A batch that failed as a whole (bucket or Nix unreachable) charges no single path.
      metrics.failedBatches++;
      throw err;
    }
  };
}
