// The daemon's uploader as /metrics counts it: a batch's uploads and failed paths, or the batch
// failing as a whole, with the report and the error passed on unchanged to the worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countedUploads } from '../../../src/daemon/counted-uploads.js';
import { DaemonMetrics } from '../../../src/daemon/metrics.js';
import type { UploadReport } from '../../../src/upload/upload-closure.js';

const report: UploadReport = {
  requested: ['/nix/store/a'],
  closureSize: 3,
  uploaded: [
    { path: '/nix/store/a', narKey: 'nar/a.nar.zst', narSize: 100, fileSize: 40 },
    { path: '/nix/store/b', narKey: 'nar/b.nar.zst', narSize: 10, fileSize: 5 },
  ],
  alreadyPresent: 0,
  learnedFromBucket: 0,
  skipped: [],
  failed: [{ path: '/nix/store/c', code: 'E_CORRUPT_PATH', message: 'NAR hash mismatch' }],
  wouldUpload: [],
  presenceRequests: 0,
  resigned: [],
  complete: false,
};

test('a batch that returns is counted path by path and handed back as it was', async () => {
  const metrics = new DaemonMetrics();
  const upload = countedUploads(() => Promise.resolve(report), metrics);
  assert.equal(await upload(['/nix/store/a'], new AbortController().signal), report);
  assert.deepEqual(
    [metrics.uploadedPaths, metrics.uploadedNarBytes, metrics.uploadedFileBytes, metrics.failedPaths],
    [2, 110, 45, 1],
  );
  assert.equal(metrics.failedBatches, 0);
});

test('a batch that fails as a whole counts once and its error reaches the worker', async () => {
  const metrics = new DaemonMetrics();
  const upload = countedUploads(() => Promise.reject(new Error('bucket unreachable')), metrics);
  await assert.rejects(upload(['/nix/store/a'], new AbortController().signal), /bucket unreachable/);
  assert.equal(metrics.failedBatches, 1);
  assert.equal(metrics.failedPaths, 0);
});
