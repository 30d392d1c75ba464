// ObjectStore over S3 and its clones (R2, MinIO, Garage, s3rver). Every request goes through
// createS3Client (retries, unsigned extra headers, no aws-chunked bodies); every failure leaves as
// a StorageError with a stable code.
import { Readable } from 'node:stream';
import {
  BodySource,
  type BodyHead,
  type GatheredBody,
  DEFAULT_QUEUE_SIZE,
  gatherBody,
  partSizeFor,
  s3BufferedPerUpload,
} from './body-source.js';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ChunkPool } from '../chunk-pool.js';
import { AbortedError, ConfigError, StorageError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MultipartUpload, MultipartUploads, ResumableParts } from './multipart-uploads.js';
import { ResumeMismatch, type ListedPart } from './resumable-upload.js';
import type { BeforeDelete, ObjectInfo, ObjectStore, PutOptions, TaggedBody } from './object-store.js';
import { errorCodeOf, httpStatusOf } from './retry.js';
import { abortOptions, createS3Transport, type S3ClientOptions } from './s3-client.js';
import { describeEndpoint } from './s3-description.js';
import { toStorageError } from './s3-errors.js';
import { S3SmallObjects } from './s3-small-objects.js';
import {
  abortMultipartUpload,
  listMultipartUploads,
  listUploadParts,
  type MultipartTarget,
} from './s3-multipart.js';
import { partBuffer, recyclePart, uploadInParts } from './s3-part-upload.js';
import { describeS3Target } from './s3-description.js';

export interface S3StoreOptions extends S3ClientOptions {
  bucket: string;
  /** Bodies up to this size go in one PutObject; larger ones are sent in parts of this size (>= 5 MiB). */
  partSizeBytes: number;
  /** Parts in flight per upload (default 2); what one upload holds is bufferedPerUpload(). */
  queueSize?: number;
  /** Prepended to every key, e.g. "cache/"; list() returns keys without it. */
  keyPrefix?: string;
  /** Keys per ListObjectsV2 page (S3's maximum and default: 1000). */
  listPageSize?: number;
  logger?: Logger;
}

/** Bodies up to this size are gathered for their PutObject in buffers of this size. */
const SMALL_BODY_BYTES = 1024 * 1024;
const TINY_BODY_BYTES = 64 * 1024;
/**
 * A body at most this share of a part longer than one part still goes in one PutObject
 * (BodySource.readHead): 1 MiB with the default part size of 8 MiB.
 */
const PART_SLACK_DIVISOR = 8;
/** S3 refuses parts below 5 MiB (except the last one). */
export const MIN_PART_SIZE_BYTES = 5 * 1024 * 1024;
/** DeleteObjects takes at most 1000 keys per request. */
const DELETE_BATCH = 1000;

export class S3ObjectStore implements ObjectStore, MultipartUploads, ResumableParts {
  readonly description: string;
  private readonly client: S3Client;
  /** HEAD, GET and PUT of small bodies: direct where the bucket allows it (s3-small-objects.ts). */
  private readonly small: S3SmallObjects;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly where: string;
  /**
   * Part buffers reused from upload to upload instead of a fresh 8 MiB buffer per part, whose
   * garbage kept the process's RSS far above its live memory. Free buffers kept: one upload's worth.
   */
  private readonly parts: ChunkPool;
  /** Buffers that gather a small body for its single PutObject (body-source.ts, gatherBody). */
  private readonly smallBodies = new ChunkPool(SMALL_BODY_BYTES, 4);

  constructor(private readonly options: S3StoreOptions) {
    if (!Number.isInteger(options.partSizeBytes) || options.partSizeBytes < MIN_PART_SIZE_BYTES) {
      throw new ConfigError('S3 part size must be at least 5 MiB: raise the part size setting');
    }
    if (options.queueSize !== undefined && !(Number.isInteger(options.queueSize) && options.queueSize >= 1)) {
      throw new ConfigError('S3 upload queue size must be a whole number of at least 1');
    }
    this.bucket = options.bucket;
    this.prefix = options.keyPrefix ?? '';
    this.where = describeEndpoint(options.endpoint, options.region);
    this.description = describeS3Target(this.bucket, this.prefix, options.endpoint, options.region);
    const transport = createS3Transport(options);
    this.client = transport.client;
    this.small = new S3SmallObjects(transport, options.bucket, options.directRequests ?? true);
    this.parts = new ChunkPool(options.partSizeBytes, (options.queueSize ?? DEFAULT_QUEUE_SIZE) + 1);
  }

  /** Drops the free part buffers (an idle daemon gives their memory back). */
  releaseIdleMemory(): void {
    this.parts.drain();
    this.smallBodies.drain();
  }

  /**
   * Where a small body read whole is gathered (a larger one was copied into a part buffer as it was
   * read, BodySource.readHead): in a buffer of 1 MiB (such NARs weigh nothing on the memory budget,
   * upload/nar-turns.ts). A tiny one is concatenated: a 1 MiB buffer for a few KiB would cost more
   * than it saves.
   */
  private gatherPool(length: number): ChunkPool | undefined {
    return length < TINY_BODY_BYTES ? undefined : this.smallBodies;
  }

  /** A cheap authenticated request, so a command can fail early with a clear message. */
  async checkAccess(signal?: AbortSignal): Promise<void> {
    const input = { Bucket: this.bucket, Prefix: this.prefix, MaxKeys: 1 };
    const out = await this.run('list', () =>
      this.client.send(new ListObjectsV2Command(input), abortOptions(signal)),
    );
    // Every S3 implementation names the bucket in a listing. A web server that answers 200 to
    // everything would otherwise pass, and then its 200 to every HEAD would make every path look
    // present: loft would report success having uploaded nothing.
    if (out.Name !== this.bucket) {
      throw new StorageError(
        `the listing of bucket "${this.bucket}" at ${this.where} came back as something that is not an ` +
          'S3 listing: check the endpoint URL',
        { code: 'E_STORAGE_NOT_S3' },
      );
    }
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.small.head(this.prefix + key, signal);
      return {
        key,
        size: out.ContentLength ?? 0,
        lastModified: out.LastModified ?? new Date(0),
        ...etagOf(out.ETag),
      };
    } catch (err) {
      // HEAD answers carry no body, so a missing bucket also looks like this; checkAccess tells them apart.
      if (isNotFound(err)) return undefined;
      throw this.fail(`head ${key}`, err);
    }
  }

  async get(key: string, signal?: AbortSignal): Promise<Buffer | undefined> {
    return (await this.getTagged(key, signal))?.body;
  }

  async getTagged(key: string, signal?: AbortSignal): Promise<TaggedBody | undefined> {
    try {
      const out = await this.small.get(this.prefix + key, signal);
      return { body: out.Body, etag: etagOf(out.ETag).etag };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.fail(`get ${key}`, err);
    }
  }

  async getStream(key: string, signal?: AbortSignal): Promise<Readable | undefined> {
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }),
        abortOptions(signal),
      );
      // On Node the SDK's body is an http.IncomingMessage, a Readable.
      return out.Body instanceof Readable ? out.Body : Readable.from([]);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.fail(`get ${key}`, err);
    }
  }

  async putBytes(key: string, body: Buffer | string, putOpts: PutOptions): Promise<void> {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const input = {
      Key: this.prefix + key,
      Body: bytes,
      ContentType: putOpts.contentType,
      ...(putOpts.contentEncoding ? { ContentEncoding: putOpts.contentEncoding } : {}),
      ...(putOpts.sha256 ? { sha256Hex: putOpts.sha256().toString('hex') } : {}),
    };
    const out = await this.run(`put ${key}`, () => this.small.put(input, putOpts.signal));
    const { etag } = etagOf(out.ETag);
    if (etag !== undefined) putOpts.onEtag?.(etag);
  }

  async createExclusive(key: string, body: Buffer | string, putOpts: PutOptions): Promise<boolean> {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const input = { Key: this.prefix + key, Body: bytes, ContentType: putOpts.contentType, IfNoneMatch: '*' };
    try {
      await this.small.put(input, putOpts.signal);
      return true;
    } catch (err) {
      // 412: the key exists; 409: a concurrent conditional write to it won (AWS).
      const status = httpStatusOf(err);
      if (status === 412 || status === 409) return false;
      throw this.fail(`put ${key} if absent`, err);
    }
  }

  /**
   * Reads ahead up to one part and an eighth: a body that fits goes in ONE PutObject (a small NAR
   * costs one request, not the three of a multipart upload); a larger one is sent in parts
   * (s3-part-upload.ts), resuming the unfinished upload that `putOpts.resumable` names.
   * Whatever fails, the body is destroyed with the thrown error so the pipeline feeding it settles.
   */
  async putStream(key: string, body: Readable, putOpts: PutOptions): Promise<void> {
    const source = new BodySource(body);
    const onAbort = () => body.destroy(new AbortedError(`upload of ${key} was cancelled`));
    if (putOpts.signal?.aborted) onAbort();
    putOpts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const partSize = partSizeFor(this.options.partSizeBytes, putOpts.sizeHint);
      const takePart = (): Buffer => partBuffer(this.parts, partSize);
      // An unfinished upload to carry on with is resumed in parts whatever the body's length.
      const slack = putOpts.resumable?.resume === undefined ? Math.floor(partSize / PART_SLACK_DIVISOR) : 0;
      const head = await source.readHead(partSize, SMALL_BODY_BYTES, takePart, putOpts.consumed, slack);
      if (head.ended) {
        await this.putWhole(key, head, putOpts);
      } else {
        await uploadInParts(this.multipartTarget(), source.rest(head.chunks), {
          key,
          ...(head.part ? { first: head.part } : {}),
          contentType: putOpts.contentType,
          partSize,
          queueSize: this.options.queueSize ?? DEFAULT_QUEUE_SIZE,
          parts: this.parts,
          ...(putOpts.signal ? { signal: putOpts.signal } : {}),
          ...(putOpts.resumable ? { resumable: putOpts.resumable } : {}),
          // A part skipped on resume is stored all the same.
          ...(putOpts.onStored ? { onPart: (part) => putOpts.onStored?.(part.size) } : {}),
          ...(putOpts.consumed ? { consumed: putOpts.consumed } : {}),
        });
      }
    } catch (err) {
      // The body's own failure (NAR or compression error, cancellation) is the cause to report.
      const failure = source.error ?? (err instanceof ResumeMismatch ? err : this.fail(`put ${key}`, err));
      body.destroy(failure);
      throw failure;
    } finally {
      putOpts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * A body read whole in ONE PutObject: its chunks gathered (a small body), or the part buffer it
   * was copied into, which goes back to the pool once the request has settled. The body has ended,
   * so a caller's hash of it (putOpts.sha256) is final and goes along.
   */
  private async putWhole(key: string, head: BodyHead, putOpts: PutOptions): Promise<void> {
    const body = this.wholeBody(head, putOpts.consumed);
    try {
      await this.putBytes(key, body.bytes, putOpts);
    } finally {
      body.done();
    }
    putOpts.onStored?.(body.bytes.length);
  }

  /**
   * The one Buffer a single PUT sends: the gathered chunks of a small body, the part buffer, or the
   * part buffer and the chunks just past it in a fresh Buffer (the part goes back to its pool at
   * once, so the upload holds no more than a part and a slack more).
   */
  private wholeBody(head: BodyHead, consumed: PutOptions['consumed']): GatheredBody {
    const part = head.part;
    if (part === undefined) return gatherBody(head.chunks, (n) => this.gatherPool(n), consumed);
    const filled = part.buffer.subarray(0, part.filled);
    if (head.chunks.length === 0) return { bytes: filled, done: () => recyclePart(this.parts, part.buffer) };
    const bytes = Buffer.concat([filled, ...head.chunks]);
    recyclePart(this.parts, part.buffer);
    for (const chunk of head.chunks.splice(0)) consumed?.(chunk);
    return { bytes, done: () => {} };
  }

  bufferedPerUpload(sizeHint: number): number {
    return s3BufferedPerUpload(this.options.partSizeBytes, this.options.queueSize, sizeHint);
  }

  list(prefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo> {
    return this.listPages(prefix, undefined, signal);
  }

  /**
   * With the delimiter `/`, S3 folds everything under `nar/`, `log/`, ... into one common prefix
   * each: a page holds up to 1000 narinfos instead of about 330 (narinfo, NAR, log per path). Keys
   * come in UTF-8 binary order, as ListObjectsV2 promises.
   */
  listTopLevel(signal?: AbortSignal, folders?: Set<string>): AsyncIterable<ObjectInfo> {
    return this.listPages('', '/', signal, folders);
  }

  private async *listPages(
    prefix: string,
    delimiter: string | undefined,
    signal?: AbortSignal,
    folders?: Set<string>,
  ): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      const input = {
        Bucket: this.bucket,
        Prefix: this.prefix + prefix,
        MaxKeys: this.options.listPageSize ?? 1000,
        ...(delimiter !== undefined ? { Delimiter: delimiter } : {}),
        ...(token !== undefined ? { ContinuationToken: token } : {}),
      };
      const page = await this.run('list', () =>
        this.client.send(new ListObjectsV2Command(input), abortOptions(signal)),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined || !o.Key.startsWith(this.prefix)) continue;
        yield {
          key: o.Key.slice(this.prefix.length),
          size: o.Size ?? 0,
          lastModified: o.LastModified ?? new Date(0),
          ...etagOf(o.ETag),
        };
      }
      for (const c of page.CommonPrefixes ?? [])
        if (c.Prefix?.startsWith(this.prefix)) folders?.add(c.Prefix.slice(this.prefix.length));
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async deleteMany(keys: string[], signal?: AbortSignal, beforeRequest?: BeforeDelete): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      if (beforeRequest && !beforeRequest(batch.length)) return;
      const input = {
        Bucket: this.bucket,
        Delete: { Objects: batch.map((k) => ({ Key: this.prefix + k })), Quiet: true },
      };
      const out = await this.run('delete', () =>
        this.client.send(new DeleteObjectsCommand(input), abortOptions(signal)),
      );
      const errors = out.Errors ?? [];
      const first = errors[0];
      if (first) {
        const firstKey = (first.Key ?? '?').slice(this.prefix.length);
        throw new StorageError(
          `could not delete ${errors.length} of ${batch.length} objects in bucket "${this.bucket}" at ${this.where}, ` +
            `first ${firstKey} (${first.Code ?? 'unknown error'}): check delete permissions`,
          { code: first.Code === 'AccessDenied' ? 'E_STORAGE_AUTH' : 'E_STORAGE' },
        );
      }
    }
  }

  /** Unfinished multipart uploads under the key prefix (keys without it), for the pruner. */
  listMultipartUploads(signal?: AbortSignal): AsyncIterable<MultipartUpload> {
    return listMultipartUploads(this.multipartTarget(), signal);
  }

  /** The parts the server holds for an unfinished upload; undefined when it is gone. */
  listUploadParts(key: string, uploadId: string, signal?: AbortSignal): Promise<ListedPart[] | undefined> {
    return listUploadParts(this.multipartTarget(), key, uploadId, signal);
  }

  /** An upload that is already gone is not an error. */
  abortMultipartUpload(key: string, uploadId: string, signal?: AbortSignal): Promise<void> {
    return abortMultipartUpload(this.multipartTarget(), key, uploadId, signal);
  }

  private multipartTarget(): MultipartTarget {
    const { client, bucket, prefix } = this;
    return { client, bucket, prefix, logger: this.options.logger, fail: (op, err) => this.fail(op, err) };
  }

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }

  private async run<T>(operation: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      throw this.fail(operation, err);
    }
  }

  private fail(operation: string, err: unknown): Error {
    return toStorageError(err, { operation, bucket: this.bucket, where: this.where });
  }
}

/** S3 quotes ETags (`"<md5>"`); callers compare them as plain strings. None or empty: no etag. */
function etagOf(raw: string | undefined): { etag?: string } {
  const etag = raw?.replace(/"/g, '').trim();
  return etag ? { etag } : {};
}

function isNotFound(err: unknown): boolean {
  const code = errorCodeOf(err);
  return (
    code === 'NotFound' || code === 'NoSuchKey' || (httpStatusOf(err) === 404 && code !== 'NoSuchBucket')
  );
}
