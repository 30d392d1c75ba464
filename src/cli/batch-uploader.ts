// The uploader the daemon and --watch-exec hand their batches of store paths to: the same pipeline
// as --upload-path, with explicit = false (a .drv nobody asked for is not uploaded), logging its
// progress as JSON lines (buildUploadDeps writes the bucket's nix-cache-info once per runtime).
import { isTargetFailure } from '../errors.js';
import { logProgress, type ProgressSink } from '../upload/progress.js';
import { uploadClosure, type UploadReport } from '../upload/upload-closure.js';
import type { Runtime } from './runtime.js';
import { buildUploadDeps } from './upload-deps.js';

/**
 * How often a long-running uploader rewrites its signed record (upload/signed-ledger.ts): a
 * record only saves other hosts GETs, and each rewrite carries all of this process's entries.
 */
const SIGNED_RECORD_EVERY_MS = 5 * 60_000;

export function batchUploader(rt: Runtime): (paths: string[], signal: AbortSignal) => Promise<UploadReport> {
  const progress = quietOnTargetFailures(logProgress(rt.logger.child({ component: 'upload' })));
  return (paths, signal) =>
    uploadClosure(
      { paths, explicit: false, dryRun: false },
      buildUploadDeps(rt, { progress, signal, signedRecordEveryMs: SIGNED_RECORD_EVERY_MS }),
    );
}

/**
 * A refusal of the whole target (access denied, no bucket) fails every path in flight: the caller
 * says so once (the daemon's access state, --watch-exec's "uploads stopped", --upload-path's error
 * line), not a line per path.
 */
export function quietOnTargetFailures(sink: ProgressSink): ProgressSink {
  return {
    ...sink,
    failed: (path, error) => {
      if (!isTargetFailure(error)) sink.failed(path, error);
    },
  };
}
