// Unfinished multipart uploads a prune found old enough (the policy's orphan grace) are aborted
// last: their parts are invisible to readers, so a failure here only leaves them for the next prune.
import type { Logger } from '../log.js';
import type { ObjectStore } from '../storage/object-store.js';
import { multipartUploadsOf } from '../storage/multipart-uploads.js';
import type { PendingUpload } from './policy.js';

export async function abortUploads(
  uploads: readonly PendingUpload[],
  deps: { store: ObjectStore; logger: Logger; signal?: AbortSignal | undefined },
): Promise<number> {
  const mp = multipartUploadsOf(deps.store);
  if (!mp) return 0;
  let aborted = 0;
  for (const u of uploads) {
    try {
      await mp.abortMultipartUpload(u.key, u.uploadId, deps.signal);
      aborted++;
    } catch (err) {
      deps.logger.warn({ key: u.key, err }, 'could not abort an unfinished multipart upload');
    }
  }
  return aborted;
}
