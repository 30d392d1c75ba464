// What an S3 store can add to ObjectStore: its unfinished multipart uploads (invisible to listings)
// and aborting them. The pruner cleans them up; a local directory has none. One check says whether
// a store offers them, shared by the pruner and the lazy store that forwards them.
import type { ObjectStore } from './object-store.js';
import type { ListedPart } from './resumable-upload.js';

export interface MultipartUpload {
  /** Without the store's key prefix, like ObjectStore keys. */
  key: string;
  uploadId: string;
  initiated: Date;
}

export interface MultipartUploads {
  listMultipartUploads(signal?: AbortSignal): AsyncIterable<MultipartUpload>;
  abortMultipartUpload(key: string, uploadId: string, signal?: AbortSignal): Promise<void>;
}

export function hasMultipartUploads(store: ObjectStore): store is ObjectStore & MultipartUploads {
  const s = store as Partial<MultipartUploads>;
  return typeof s.listMultipartUploads === 'function' && typeof s.abortMultipartUpload === 'function';
}

export function multipartUploadsOf(store: ObjectStore): MultipartUploads | undefined {
  return hasMultipartUploads(store) ? store : undefined;
}

/** A store that can list the parts of an unfinished upload, so it can be resumed. */
export interface ResumableParts {
  /** undefined when the upload is gone (completed, aborted) or the store cannot tell. */
  listUploadParts(key: string, uploadId: string, signal?: AbortSignal): Promise<ListedPart[] | undefined>;
}

export function resumablePartsOf(store: ObjectStore): ResumableParts | undefined {
  const s = store as Partial<ResumableParts>;
  return typeof s.listUploadParts === 'function' ? (store as ObjectStore & ResumableParts) : undefined;
}
