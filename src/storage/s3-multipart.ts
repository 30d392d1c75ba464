// The multipart calls of S3, one function each: create, upload a part, complete, list the parts of
// an upload (to resume it after a crash), list unfinished uploads and abort one (for the pruner: a
// crash or a kill mid-upload leaves parts that no listing shows and that are billed until
// AbortMultipartUpload or a lifecycle rule removes them). ListMultipartUploads pages with a
// (KeyMarker, UploadIdMarker) pair, ListParts with a PartNumberMarker.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { StorageError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MultipartUpload } from './multipart-uploads.js';
import type { ListedPart } from './resumable-upload.js';
import { errorCodeOf, httpStatusOf } from './retry.js';
import { abortOptions } from './s3-client.js';

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
      page = await t.client.send(new ListMultipartUploadsCommand(input), abortOptions(signal));
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
    await t.client.send(new AbortMultipartUploadCommand(input), abortOptions(signal));
  } catch (err) {
    if (errorCodeOf(err) === 'NoSuchUpload') return;
    throw t.fail(`abort multipart upload of ${key}`, err);
  }
}

export async function createMultipartUpload(
  t: MultipartTarget,
  key: string,
  contentType: string,
  signal?: AbortSignal,
): Promise<string> {
  const input = { Bucket: t.bucket, Key: t.prefix + key, ContentType: contentType };
  let out;
  try {
    out = await t.client.send(new CreateMultipartUploadCommand(input), abortOptions(signal));
  } catch (err) {
    throw t.fail(`start multipart upload of ${key}`, err);
  }
  if (out.UploadId === undefined || out.UploadId === '') {
    throw new StorageError(`the endpoint started a multipart upload of ${key} without an upload id`);
  }
  return out.UploadId;
}

/**
 * One part from memory, so the SDK can send it again on a retry. Content-MD5 lets the server refuse
 * a part damaged on the way (S3 answers BadDigest), the same MD5 the journal records.
 */
export async function uploadPart(
  t: MultipartTarget,
  part: { key: string; uploadId: string; partNumber: number; body: Buffer; md5: Buffer },
  signal?: AbortSignal,
): Promise<string> {
  const input = {
    Bucket: t.bucket,
    Key: t.prefix + part.key,
    UploadId: part.uploadId,
    PartNumber: part.partNumber,
    Body: part.body,
    ContentLength: part.body.length,
    ContentMD5: part.md5.toString('base64'),
  };
  const command = new UploadPartCommand(input);
  unsignedOverTls(command);
  let out;
  try {
    out = await t.client.send(command, abortOptions(signal));
  } catch (err) {
    throw t.fail(`upload part ${part.partNumber} of ${part.key}`, err);
  }
  if (out.ETag === undefined) {
    throw new StorageError(`the endpoint stored part ${part.partNumber} of ${part.key} without an ETag`);
  }
  return out.ETag;
}

/**
 * Over https a part is signed with the payload hash `UNSIGNED-PAYLOAD`, which S3's SigV4 documents
 * for this case: TLS keeps the body from being changed on the way, and the server still checks the
 * part's Content-MD5, which the resume journal needs anyway. Otherwise the signer hashes every part
 * with sha256 itself (@smithy/signature-v4 getPayloadHash), a second pass over every uploaded byte
 * beside the MD5; over plain http it still does, so the body stays signed there. Set in the build
 * step, before signing, so the value is signed (as usePayloadHash in s3-object-store.ts).
 */
function unsignedOverTls(command: UploadPartCommand): void {
  command.middlewareStack.add(
    (next) => (args) => {
      const request = args.request as { protocol?: string; headers?: Record<string, string> };
      if (request.headers && request.protocol?.replace(/:$/, '') === 'https')
        request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'loftUnsignedPartOverTls' },
  );
}

export async function completeMultipartUpload(
  t: MultipartTarget,
  key: string,
  uploadId: string,
  parts: ReadonlyArray<{ partNumber: number; etag: string }>,
  signal?: AbortSignal,
): Promise<void> {
  const input = {
    Bucket: t.bucket,
    Key: t.prefix + key,
    UploadId: uploadId,
    MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
  };
  try {
    await t.client.send(new CompleteMultipartUploadCommand(input), abortOptions(signal));
  } catch (err) {
    throw t.fail(`complete multipart upload of ${key}`, err);
  }
}

/**
 * The parts the server holds for an unfinished upload, in order; undefined when the upload is gone
 * (completed, aborted by a prune or a lifecycle rule) or the endpoint cannot list parts.
 */
export async function listUploadParts(
  t: MultipartTarget,
  key: string,
  uploadId: string,
  signal?: AbortSignal,
): Promise<ListedPart[] | undefined> {
  const parts: ListedPart[] = [];
  let marker: string | undefined;
  do {
    const input = {
      Bucket: t.bucket,
      Key: t.prefix + key,
      UploadId: uploadId,
      ...(marker !== undefined ? { PartNumberMarker: marker } : {}),
    };
    let page;
    try {
      page = await t.client.send(new ListPartsCommand(input), abortOptions(signal));
    } catch (err) {
      // s3rver has no ListParts (405 MethodNotAllowed): nothing there can be resumed.
      const status = httpStatusOf(err);
      if (errorCodeOf(err) === 'NoSuchUpload' || status === 404 || status === 405 || isNotImplemented(err))
        return undefined;
      throw t.fail(`list the parts of the unfinished upload of ${key}`, err);
    }
    for (const p of page.Parts ?? []) {
      if (p.PartNumber === undefined || p.ETag === undefined || p.Size === undefined) continue;
      parts.push({ partNumber: p.PartNumber, etag: p.ETag, size: p.Size });
    }
    const next = page.IsTruncated === true ? page.NextPartNumberMarker : undefined;
    marker = next !== undefined && next !== marker ? next : undefined;
  } while (marker !== undefined);
  return parts.sort((a, b) => a.partNumber - b.partNumber);
}

function isNotImplemented(err: unknown): boolean {
  return errorCodeOf(err) === 'NotImplemented' || httpStatusOf(err) === 501;
}
