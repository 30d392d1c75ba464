// The uploader the daemon and --watch-exec hand their batches of store paths to: the same pipeline
// as --upload-path, with explicit = false (a .drv nobody asked for is not uploaded), logging its
// progress as JSON lines, and writing the bucket's nix-cache-info before the first upload.
import { ensureNixCacheInfo } from '../upload/cache-info.js';
import { logProgress } from '../upload/progress.js';
import { uploadClosure, type UploadReport } from '../upload/upload-closure.js';
import type { Runtime } from './runtime.js';
import { buildUploadDeps } from './upload-deps.js';

export function batchUploader(rt: Runtime): (paths: string[], signal: AbortSignal) => Promise<UploadReport> {
  const progress = logProgress(rt.logger.child({ component: 'upload' }));
  let cacheInfoWritten = false;
  const c = rt.config;
  return (paths, signal) =>
    uploadClosure(
      { paths, explicit: false, dryRun: false },
      {
        ...buildUploadDeps(rt, { progress, signal }),
        // Once per process, not once per batch: the bucket's nix-cache-info does not change under us.
        beforeFirstUpload: async () => {
          if (cacheInfoWritten) return;
          await ensureNixCacheInfo(rt.store, { storeDir: c.storeDir, priority: c.priority });
          cacheInfoWritten = true;
        },
      },
    );
}
