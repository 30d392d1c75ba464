// What a closure upload reports (src/upload/upload-closure.ts) when `paths` were requested and
// every one but `failed` was uploaded: the stand-in outcome of the daemon's and worker's unit tests.
import type { FailedPath, UploadReport } from '../../src/upload/upload-closure.js';

export function uploadReport(paths: string[], failed: FailedPath[] = []): UploadReport {
  const bad = new Set(failed.map((f) => f.path));
  return {
    requested: paths,
    closureSize: paths.length,
    uploaded: paths
      .filter((p) => !bad.has(p))
      .map((path) => ({ path, narKey: 'k', narSize: 1, fileSize: 1 })),
    alreadyPresent: 0,
    learnedFromBucket: 0,
    skipped: [],
    failed,
    wouldUpload: [],
    presenceRequests: 0,
    resigned: [],
    complete: failed.length === 0,
  };
}
