// Unfinished multipart uploads of an S3 bucket, for the pruner: a crash or a kill mid-upload leaves
// parts that no listing shows and that are billed until AbortMultipartUpload (or a lifecycle rule)
// removes them. ListMultipartUploads pages with a (KeyMarker, UploadIdMarker) pair, not a token.
import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { StorageError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MultipartUpload } from './multipart-uploads.js';
import { errorCodeOf, httpStatusOf } from './retry.js';

/** What the S3 store lends these functions: its client, bucket, prefix and error mapping. */
export interface MultipartTarget {
  client: S3Client;
  bucket: string;
  prefix: string;
  logger: Logger | undefined;
  fail(operation: string, err: unknown): Error;
}

/**
 * Every unfinished upload under the store's prefix. An endpoint that does not implement the call
 * (s3rver answers 501 NotImplemented) has nothing we could abort anyway: it yields none and warns,
 * so a prune still runs. A missing Initiated counts as now, so such an upload is never "old".
 */
export async function* listMultipartUploads(
  t: MultipartTarget,
  signal?: AbortSignal,
): AsyncGenerator<MultipartUpload> {
  let marker: { key: string; uploadId: string } | undefined;
  do {
    const input = {
      Bucket: t.bucket,
      Prefix: t.prefix,
      ...(marker ? { KeyMarker: marker.key, UploadIdMarker: marker.uploadId } : {}),
    };
    let page;
    try {
      page = await t.client.send(new ListMultipartUploadsCommand(input), opts(signal));
    } catch (err) {
      if (!isNotImplemented(err)) throw t.fail('list multipart uploads', err);
      t.logger?.warn(
        { bucket: t.bucket, code: errorCodeOf(err), status: httpStatusOf(err) },
        'the S3 endpoint cannot list unfinished multipart uploads, so they are not pruned; a bucket lifecycle rule can remove them',
      );
      return;
    }
    const now = new Date();
    for (const u of page.Uploads ?? []) {
      if (u.Key === undefined || u.UploadId === undefined || !u.Key.startsWith(t.prefix)) continue;
      yield { key: u.Key.slice(t.prefix.length), uploadId: u.UploadId, initiated: u.Initiated ?? now };
    }
    const previous = marker;
    marker = page.IsTruncated === true ? nextMarker(page) : undefined;
    if (marker && previous && marker.key === previous.key && marker.uploadId === previous.uploadId) {
      // A page that does not move on would repeat forever.
      throw new StorageError(
        `listing multipart uploads in bucket "${t.bucket}" did not advance past key ${marker.key}: the endpoint's paging is broken`,
      );
    }
  } while (marker !== undefined);
}

/** S3 names the next page's start; some clones leave it out, and then the page's last entry is it. */
function nextMarker(page: {
  NextKeyMarker?: string | undefined;
  NextUploadIdMarker?: string | undefined;
  Uploads?: Array<{ Key?: string | undefined; UploadId?: string | undefined }> | undefined;
}): { key: string; uploadId: string } | undefined {
  if (page.NextKeyMarker !== undefined && page.NextKeyMarker !== '') {
    return { key: page.NextKeyMarker, uploadId: page.NextUploadIdMarker ?? '' };
  }
  const last = page.Uploads?.at(-1);
  if (last?.Key === undefined) return undefined;
  return { key: last.Key, uploadId: last.UploadId ?? '' };
}

/** An upload that is already gone (NoSuchUpload: completed, aborted, or a retried abort) is fine. */
export async function abortMultipartUpload(
  t: MultipartTarget,
  key: string,
  uploadId: string,
  signal?: AbortSignal,
): Promise<void> {
  const input = { Bucket: t.bucket, Key: t.prefix + key, UploadId: uploadId };
  try {
    await t.client.send(new AbortMultipartUploadCommand(input), opts(signal));
  } catch (err) {
    if (errorCodeOf(err) === 'NoSuchUpload') return;
    throw t.fail(`abort multipart upload of ${key}`, err);
  }
}

function isNotImplemented(err: unknown): boolean {
  return errorCodeOf(err) === 'NotImplemented' || httpStatusOf(err) === 501;
}

function opts(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal ? { abortSignal: signal } : {};
}
