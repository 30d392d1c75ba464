// loft's own multipart driver (CreateMultipartUpload, UploadPart, CompleteMultipartUpload), in place
// of lib-storage's Upload, because a run killed mid-upload must leave enough behind for the next
// run to carry on: the upload id and every acknowledged part (number, ETag, size, MD5) go to a
// journal as they happen, and a resumed upload skips the parts whose re-produced bytes have the
// recorded MD5. Memory stays bounded like lib-storage's: one part being filled and `queueSize`
// parts in flight, each a buffer of the part size, taken from the store's part pool and given back
// to it once its request has settled (the upload's share of the memory budget covers them:
// upload/nar-turns.ts weighs each body by ObjectStore.bufferedPerUpload).
import { createHash } from 'node:crypto';
import type { ChunkPool } from '../chunk-pool.js';
import { ResumeMismatch, type ResumableUpload, type StoredPart } from './resumable-upload.js';
import { errorCodeOf, httpStatusOf } from './retry.js';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  uploadPart,
  type MultipartTarget,
} from './s3-multipart.js';

export interface PartUploadOptions {
  key: string;
  contentType: string;
  partSize: number;
  /** Parts sent at once. */
  queueSize: number;
  signal?: AbortSignal;
  resumable?: ResumableUpload;
  /** Told whenever a part is stored or skipped, for the caller's counts (tests, logs). */
  onPart?: (part: StoredPart, sent: boolean) => void;
  /** Each body chunk once copied into a part: the body's lender may reuse it (PutOptions.consumed). */
  consumed?: (chunk: Buffer) => void;
  /** Reused part buffers, when their size is `partSize`; otherwise each part is fresh memory. */
  parts?: ChunkPool;
  /** The first part's buffer (from partBuffer()) with the body's first `filled` bytes in it. */
  first?: { buffer: Buffer; filled: number };
}

/** A whole part buffer of `partSize` bytes: a pooled one when the pool's buffers have that size. */
export function partBuffer(pool: ChunkPool | undefined, partSize: number): Buffer {
  return pool !== undefined && pool.chunkBytes === partSize ? pool.take() : Buffer.allocUnsafe(partSize);
}

/** `part` (a part buffer or the start of one) is read by nobody any more: back to its pool. */
export function recyclePart(pool: ChunkPool | undefined, part: Buffer): void {
  if (pool === undefined || part.buffer.byteLength !== pool.chunkBytes) return;
  pool.recycle(Buffer.from(part.buffer, part.byteOffset, pool.chunkBytes));
}

/**
 * Sends `body` in parts of `options.partSize` (the last may be shorter) and completes the upload.
 * On any failure the upload is aborted (nothing is left to bill or to resume) and the error thrown;
 * a body that differs from a resumed upload's parts throws ResumeMismatch after the abort.
 */
export async function uploadInParts(
  t: MultipartTarget,
  body: AsyncIterable<Buffer>,
  options: PartUploadOptions,
): Promise<void> {
  const { key, resumable } = options;
  const resume = resumable?.resume;
  const uploadId =
    resume?.uploadId ?? (await createMultipartUpload(t, key, options.contentType, options.signal));
  resumable?.journal.started(uploadId, options.partSize);
  const run = new PartRun(t, uploadId, options);
  try {
    if (resume !== undefined && resume.partSize !== options.partSize) throw new ResumeMismatch(key, 1);
    await run.sendAll(body);
    await completeMultipartUpload(t, key, uploadId, run.partsInOrder(), options.signal);
  } catch (err) {
    await run.settle();
    await abortQuietly(t, key, uploadId);
    resumable?.journal.ended(uploadId);
    throw err;
  }
  resumable?.journal.ended(uploadId);
}

/** One upload's parts: cut from the body, skipped when already stored, else sent a few at a time. */
class PartRun {
  readonly #done = new Map<number, StoredPart>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #recorded: ReadonlyMap<number, StoredPart>;
  #failure: Error | undefined;

  constructor(
    private readonly t: MultipartTarget,
    private readonly uploadId: string,
    private readonly o: PartUploadOptions,
  ) {
    this.#recorded = new Map((o.resumable?.resume?.parts ?? []).map((p) => [p.partNumber, p]));
  }

  /** A whole part buffer; given back with #recycle once nothing reads it. */
  #newPart(): Buffer {
    return partBuffer(this.o.parts, this.o.partSize);
  }

  /** `body` is a part buffer (or the start of one) whose request has settled or was never sent. */
  #recycle(body: Buffer): void {
    recyclePart(this.o.parts, body);
  }

  async sendAll(body: AsyncIterable<Buffer>): Promise<void> {
    let partNumber = 0;
    let part = this.o.first?.buffer ?? this.#newPart();
    let filled = this.o.first?.filled ?? 0;
    for await (const chunk of body) {
      let offset = 0;
      while (offset < chunk.length) {
        const n = chunk.copy(part, filled, offset);
        filled += n;
        offset += n;
        if (filled === part.length) {
          await this.#take(++partNumber, part);
          part = this.#newPart();
          filled = 0;
        }
      }
      this.o.consumed?.(chunk);
    }
    if (filled > 0 || partNumber === 0) await this.#take(++partNumber, part.subarray(0, filled));
    // A recorded part past the body's end: the body is shorter than the one that was uploaded.
    if ([...this.#recorded.keys()].some((n) => n > partNumber)) throw this.#mismatch(partNumber + 1);
    await this.settle();
    if (this.#failure !== undefined) throw this.#failure;
  }

  partsInOrder(): StoredPart[] {
    return [...this.#done.values()].sort((a, b) => a.partNumber - b.partNumber);
  }

  /** Waits for every part in flight, whatever its outcome. */
  async settle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  async #take(partNumber: number, body: Buffer): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    const md5 = createHash('md5').update(body).digest();
    const recorded = this.#recorded.get(partNumber);
    if (recorded !== undefined) {
      if (recorded.size !== body.length || recorded.md5 !== md5.toString('hex'))
        throw this.#mismatch(partNumber);
      this.#done.set(partNumber, recorded);
      this.o.onPart?.(recorded, false);
      this.#recycle(body);
      return;
    }
    while (this.#inFlight.size >= this.o.queueSize) await Promise.race(this.#inFlight);
    // Read again: a part in flight may have failed during the wait.
    const failed = this.#failure as Error | undefined;
    if (failed !== undefined) throw failed;
    const sending = this.#send(partNumber, body, md5).then(
      () => {
        this.#inFlight.delete(sending);
        this.#recycle(body);
      },
      (err: unknown) => {
        this.#inFlight.delete(sending);
        this.#recycle(body);
        this.#failure ??= err instanceof Error ? err : new Error(String(err));
      },
    );
    this.#inFlight.add(sending);
  }

  async #send(partNumber: number, body: Buffer, md5: Buffer): Promise<void> {
    const { key } = this.o;
    const etag = await uploadPart(
      this.t,
      { key, uploadId: this.uploadId, partNumber, body, md5 },
      this.o.signal,
    );
    const stored: StoredPart = { partNumber, etag, size: body.length, md5: md5.toString('hex') };
    this.#done.set(partNumber, stored);
    this.o.resumable?.journal.stored(this.uploadId, stored);
    this.o.onPart?.(stored, true);
  }

  #mismatch(partNumber: number): ResumeMismatch {
    return new ResumeMismatch(this.o.key, partNumber);
  }
}

/** Not fatal: the parts are invisible to readers; pruning or a lifecycle rule collects them. */
async function abortQuietly(t: MultipartTarget, key: string, uploadId: string): Promise<void> {
  try {
    await abortMultipartUpload(t, key, uploadId);
  } catch (err) {
    t.logger?.warn(
      { key, code: errorCodeOf(err), status: httpStatusOf(err) },
      'could not abort multipart upload; its parts stay until pruning or a lifecycle rule removes them',
    );
  }
}
