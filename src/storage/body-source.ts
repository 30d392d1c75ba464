// Reading a NAR body for S3: the first part is read ahead to choose between one PutObject and a
// multipart upload, and the part size grows for bodies too big for S3's 10,000 parts.
import { finished, type Readable } from 'node:stream';
import type { ChunkPool } from '../chunk-pool.js';

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
 *
 * Chunk by chunk, as the body pushed them: the body's chunks are lent pieces of compressed output
 * (upload/zstd-output.ts) that the store gives back one by one (PutOptions.consumed). The stream's
 * async iterator reads a paused stream with `read()`, which concatenates everything buffered into
 * one fresh Buffer whenever the reader lags: fresh memory for the garbage collector, and the lent
 * pieces inside never come back to be reused. So the body flows one chunk at a time instead: each
 * 'data' event queues its chunk and pauses the body until next() takes it.
 */
export class BodySource {
  error: Error | undefined;
  readonly #queue: Buffer[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(private readonly body: Readable) {
    body.pause();
    body.on('data', (chunk: unknown) => {
      this.#queue.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string | Uint8Array));
      body.pause();
      this.#wakeReader();
    });
    // finished() reports an error, a destruction before the end (premature close) or the end.
    finished(body, (err) => {
      if (err) this.error = err instanceof Error ? err : new Error(String(err));
      this.#ended = true;
      this.#wakeReader();
    });
  }

  async next(): Promise<Buffer | undefined> {
    for (;;) {
      // The body's failure first: what it queued before failing is never sent.
      if (this.error) throw this.error;
      const chunk = this.#queue.shift();
      if (chunk !== undefined) return chunk;
      if (this.#ended) return undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.body.resume();
      });
    }
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
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

  /**
   * The chunks read ahead (`first`, emptied as they go), then the rest of the body. The read-ahead
   * array is let go of chunk by chunk: the caller's frame still holds it for the whole upload, and
   * with `yield*` it kept a part's worth of compressed output reachable until the last part was
   * sent (on the bench closure: 8 MiB per large NAR, pinned after it had been copied and given back).
   */
  async *rest(first: Buffer[]): AsyncGenerator<Buffer> {
    for (let chunk = first.shift(); chunk !== undefined; chunk = first.shift()) yield chunk;
    for (let chunk = await this.next(); chunk !== undefined; chunk = await this.next()) yield chunk;
  }
}

/** A body read whole, as the one Buffer a single PUT sends; done() once its request has settled. */
export interface GatheredBody {
  bytes: Buffer;
  done(): void;
}

/**
 * The chunks of a body read whole (readUpTo ended) as one Buffer, without fresh memory: the one
 * chunk itself, or the chunks copied into a buffer of the pool `poolFor(length)` names (given back
 * by done()); only a body no pool fits is concatenated. On the bench closure to S3, the concatenation
 * was 142 MiB of fresh Buffers per run (296 NARs), a third of all fresh memory. Each chunk goes to
 * `consumed` once no reference to it is kept: at once when copied, after the request when sent as is.
 */
export function gatherBody(
  chunks: Buffer[],
  poolFor: (length: number) => ChunkPool | undefined,
  consumed: ((chunk: Buffer) => void) | undefined,
): GatheredBody {
  if (chunks.length === 1) {
    const only = chunks[0]!;
    return { bytes: only, done: () => consumed?.(only) };
  }
  const length = chunks.reduce((n, c) => n + c.length, 0);
  const pool = poolFor(length);
  const whole = pool?.take();
  const bytes = whole === undefined ? Buffer.concat(chunks, length) : whole.subarray(0, length);
  let at = 0;
  for (const chunk of chunks) {
    if (whole !== undefined) at += chunk.copy(whole, at);
    consumed?.(chunk);
  }
  let given = false;
  return {
    bytes,
    done: () => {
      if (given || whole === undefined) return;
      given = true;
      pool!.recycle(whole);
    },
  };
}
