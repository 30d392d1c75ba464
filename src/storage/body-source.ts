// Reading a NAR body for S3: the first part is read ahead to choose between one PutObject and a
// multipart upload, and the part size grows for bodies too big for S3's 10,000 parts.
import type { Readable } from 'node:stream';

/** S3 allows 10,000 parts per upload; aim below it so a size hint that is a little low still fits. */
const TARGET_MAX_PARTS = 9000;
const MiB = 1024 * 1024;

/**
 * The configured part size keeps memory low for ordinary NARs; a body whose size hint would need
 * more than TARGET_MAX_PARTS parts gets larger parts (whole MiB), so any NAR up to S3's 5 TiB fits.
 */
export function partSizeFor(configured: number, sizeHint: number | undefined): number {
  if (sizeHint === undefined) return configured;
  return Math.max(configured, Math.ceil(sizeHint / TARGET_MAX_PARTS / MiB) * MiB);
}

/** Parts of one multipart upload in flight at once, unless the store is told otherwise. */
export const DEFAULT_QUEUE_SIZE = 2;

/**
 * What one S3 upload of a body of about `sizeHint` bytes holds in memory: the part read ahead (to
 * choose one PUT or multipart), then the part driver's part being filled (s3-part-upload.ts) and `queueSize` parts in
 * flight, so queueSize + 2 parts, and never more than the body.
 */
export function s3BufferedPerUpload(
  partSizeBytes: number,
  queueSize: number | undefined,
  sizeHint: number,
): number {
  const parts = (queueSize ?? DEFAULT_QUEUE_SIZE) + 2;
  return Math.min(sizeHint, parts * partSizeFor(partSizeBytes, sizeHint));
}

/**
 * Pulls a Readable by hand so the first part can be inspected before choosing PutObject or
 * multipart, and remembers whether a failure came from the body rather than from S3.
 */
export class BodySource {
  error: Error | undefined;
  private readonly it: AsyncIterator<unknown>;

  constructor(body: Readable) {
    this.it = body[Symbol.asyncIterator]();
  }

  async next(): Promise<Buffer | undefined> {
    try {
      const r = await this.it.next();
      if (r.done === true) return undefined;
      return Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as string | Uint8Array);
    } catch (err) {
      this.error = err instanceof Error ? err : new Error(String(err));
      throw this.error;
    }
  }

  /** Chunks until more than `limit` bytes were read (ended: false) or the body ended within it. */
  async readUpTo(limit: number): Promise<{ chunks: Buffer[]; ended: boolean }> {
    const chunks: Buffer[] = [];
    let length = 0;
    while (length <= limit) {
      const chunk = await this.next();
      if (chunk === undefined) return { chunks, ended: true };
      chunks.push(chunk);
      length += chunk.length;
    }
    return { chunks, ended: false };
  }

  async *rest(first: Buffer[]): AsyncGenerator<Buffer> {
    yield* first;
    for (let chunk = await this.next(); chunk !== undefined; chunk = await this.next()) yield chunk;
  }
}
