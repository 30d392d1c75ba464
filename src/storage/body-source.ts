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
   * Reads ahead to choose between one PUT and a multipart upload without holding the body's chunks:
   * up to `hold` bytes they are kept as they came (a small body, gathered by gatherBody), and past
   * that they are copied into the first part's buffer from `takePart` as they arrive, each given to
   * `consumed` at once. Held, a part's worth of chunks pinned their lender's memory: zstd's output
   * slabs hold one 4 MiB frame's output each, so 8 MiB of compressed text kept a slab per 1-2 MiB
   * (upload/zstd-output.ts), about 30 MiB per large upload on the bench closure, while the bytes
   * were copied into a part buffer a moment later all the same.
   * Once a whole chunk no longer fits in the part, it and the chunks after it are held, not copied,
   * until the body is past `partSize + slack` bytes (ended: false: they are the start of the rest)
   * or ends within them (ended: true: one PUT of the part and them). A body just over a part (an
   * incompressible file of exactly 8 MiB comes out a few hundred bytes longer, in two pieces of
   * 4 MiB and a little) then costs one request, not four (create, two parts, complete), and over a
   * wide-area link two round trips less before its narinfo.
   */
  async readHead(
    partSize: number,
    hold: number,
    takePart: () => Buffer,
    consumed: ((chunk: Buffer) => void) | undefined,
    slack = 0,
  ): Promise<BodyHead> {
    const chunks: Buffer[] = [];
    let length = 0;
    let part: Buffer | undefined;
    for (;;) {
      const chunk = await this.next();
      if (chunk === undefined)
        return { chunks, ended: true, ...(part ? { part: { buffer: part, filled: length } } : {}) };
      if (part === undefined && length + chunk.length <= hold) {
        chunks.push(chunk);
        length += chunk.length;
        continue;
      }
      if (part === undefined) {
        part = takePart();
        length = 0;
        for (const held of chunks.splice(0)) {
          length += held.copy(part, length);
          consumed?.(held);
        }
      }
      if (length + chunk.length > partSize) {
        return this.#readOverflow(chunk, partSize + slack - length, { buffer: part, filled: length });
      }
      length += chunk.copy(part, length);
      consumed?.(chunk);
    }
  }

  /** After the first part: the chunks that did not fit, up to just past `room` bytes or the end. */
  async #readOverflow(
    first: Buffer,
    room: number,
    part: { buffer: Buffer; filled: number },
  ): Promise<BodyHead> {
    const chunks = [first];
    let held = first.length;
    while (held <= room) {
      const chunk = await this.next();
      if (chunk === undefined) return { chunks, ended: true, part };
      chunks.push(chunk);
      held += chunk.length;
    }
    return { chunks, ended: false, part };
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

/** What readHead() read. */
export interface BodyHead {
  /** The body's last chunk has been read. */
  ended: boolean;
  /**
   * Without `part`: every chunk read (the body ended within `hold`). With it: the chunks that did
   * not fit in the part, to be sent after it (none when the body ended within the part).
   */
  chunks: Buffer[];
  /** The first part's buffer and the bytes copied into it. */
  part?: { buffer: Buffer; filled: number };
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
