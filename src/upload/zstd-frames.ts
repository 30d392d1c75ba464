// zstd as a sequence of independent frames, one per ZSTD_FRAME_BYTES of input, compressed side by
// side on libuv's thread pool and written in order. Every zstd decoder reads a file of concatenated
// frames as the concatenation of their contents (the zstd format's own rule, RFC 8878 section 3.1),
// which is how Nix 2.35 writes large NARs (16 MiB frames compressed in parallel) and what Nix 2.8
// reads here (test/integration/zstd-frames-nix.test.ts). A NAR smaller than one frame is one frame.
//
// Why node:zlib on libuv's pool rather than worker threads: the frame buffer goes to the pool as it
// is (no copy into a worker, no worker start-up or messaging), and node:zlib was already loft's zstd
// (docs/architecture.md, "zstd from node:zlib").
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { ChunkPool, giveBack, READ_CHUNKS, type Slab } from '../chunk-pool.js';
import type { ComputePool, FrameSlot } from './compute-pool.js';

export { ZSTD_FRAME_BYTES } from './compute-pool.js';

/**
 * A frame that ends within this many bytes needs no slot: most NARs are small, and a slot held while
 * a small path's many files are read would leave the cores idle (the reads wait on the disk). What
 * such frames hold is bounded by the number of uploads in flight times this. One read buffer: a
 * small frame is gathered into one before it is compressed.
 */
const SMALL_FRAME_BYTES = READ_CHUNKS.chunkBytes;
/** A frame goes to the thread pool in steps of this much input, each with an output buffer of its own. */
const STEP_BYTES = 1024 * 1024;

/**
 * Room for what one step can produce: zstd's ZSTD_COMPRESSBOUND of the step (incompressible data
 * grows by 1/256), plus one block (128 KiB) that zstd may still hold from the step before and the
 * frame's header and checksum.
 */
const STEP_OUTPUT_BYTES = STEP_BYTES + (STEP_BYTES >>> 8) + 129 * 1024;

/**
 * Output buffers of every frame, given back by the store once written (src/chunk-pool.ts). They
 * replace the fresh buffers node:zlib would allocate: that memory was most of what still started
 * full garbage collections, and the garbage waiting for one was a large part of peak RSS.
 */
export const FRAME_OUTPUTS = new ChunkPool(STEP_OUTPUT_BYTES, 16);

interface Frame {
  /** Compressed pieces not yet pushed; the first frame's go downstream as they are produced. */
  pieces: Buffer[];
  done: boolean;
  slot: FrameSlot | undefined;
}

export class ZstdFrameCompressor extends Transform {
  /** The frame being filled: first as a list of small chunks, then copied into a slot's buffer. */
  #small: Buffer[] = [];
  #slot: FrameSlot | undefined;
  #fillBytes = 0;
  #framesStarted = 0;
  /** Frames in input order, compressing or waiting to be pushed. */
  readonly #frames: Frame[] = [];
  /** The consumer is full: hold compressed pieces (and their slots) until it reads again. */
  #blocked = false;
  #flushCallback: TransformCallback | undefined;

  constructor(
    private readonly pool: ComputePool,
    private readonly level: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.#take(chunk).then(() => callback(), callback);
  }

  async #take(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length && !this.destroyed) {
      const rest = chunk.length - offset;
      if (this.#slot === undefined && this.#fillBytes + rest <= SMALL_FRAME_BYTES) {
        // Kept by reference until the frame starts (then copied, and given back if it was whole).
        this.#small.push(offset === 0 ? chunk : chunk.subarray(offset));
        this.#fillBytes += rest;
        return;
      }
      if (this.#slot === undefined) {
        // The slot is taken before the frame grows past small, so filling counts against memory.
        const slot = await this.pool.acquire();
        if (this.destroyed) return slot.release();
        this.#slot = slot;
        let at = 0;
        for (const piece of this.#small.splice(0)) {
          at += piece.copy(slot.buffer, at);
          giveBack(piece);
        }
      }
      // Copied, not kept: the stream's chunks are freed at once and the frame buffer is reused.
      const n = chunk.copy(this.#slot.buffer, this.#fillBytes, offset);
      this.#fillBytes += n;
      offset += n;
      if (this.#fillBytes === this.pool.frameBytes) this.#startFrame();
    }
    // Every byte is in a frame buffer now; a pooled chunk goes back to its pool.
    giveBack(chunk);
  }

  override _flush(callback: TransformCallback): void {
    // An empty input still gets one (empty) frame: a zero-byte file is not a zstd file.
    if (this.#fillBytes > 0 || this.#framesStarted === 0) this.#startFrame();
    this.#flushCallback = callback;
    this.#pushReady();
  }

  #startFrame(): void {
    const slot = this.#slot;
    // A small frame is gathered into a pooled read buffer (it is at most one), given back when done.
    const gathered = slot ? undefined : this.#concatSmall();
    const input = slot ? slot.buffer.subarray(0, this.#fillBytes) : gathered!;
    const frame: Frame = { pieces: [], done: false, slot };
    this.#slot = undefined;
    this.#fillBytes = 0;
    this.#framesStarted++;
    this.#frames.push(frame);
    compressFrame(input, this.level, {
      piece: (p) => {
        frame.pieces.push(p);
        if (frame === this.#frames[0]) this.#pushReady();
      },
      done: (err) => {
        if (gathered) giveBack(gathered);
        if (this.destroyed) return slot?.release();
        if (err) return void this.destroy(err);
        frame.done = true;
        this.#pushReady();
      },
    });
  }

  #concatSmall(): Buffer {
    const whole = READ_CHUNKS.take(this.#fillBytes);
    let at = 0;
    for (const piece of this.#small.splice(0)) {
      at += piece.copy(whole, at);
      giveBack(piece);
    }
    return whole;
  }

  /** Pushes compressed pieces in order while the consumer takes them; ends after the last frame. */
  #pushReady(): void {
    while (!this.#blocked && !this.destroyed) {
      const head = this.#frames[0];
      if (head === undefined) break;
      const piece = head.pieces.shift();
      if (piece !== undefined) {
        if (!this.push(piece)) this.#blocked = true;
        continue;
      }
      if (!head.done) break;
      this.#frames.shift();
      head.slot?.release();
    }
    if (this.#frames.length === 0 && this.#flushCallback !== undefined && !this.destroyed) {
      const cb = this.#flushCallback;
      this.#flushCallback = undefined;
      cb();
    }
  }

  override _read(size: number): void {
    this.#blocked = false;
    this.#pushReady();
    super._read(size);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // Frames still compressing give their slot back when their job returns (see #startFrame).
    for (const frame of this.#frames) if (frame.done) frame.slot?.release();
    this.#frames.length = 0;
    this.#slot?.release();
    this.#slot = undefined;
    this.#small = [];
    callback(err);
  }
}

interface FrameSink {
  piece(p: Buffer): void;
  done(err: Error | null): void;
}

/** The fields of a node:zlib stream that say where its output goes (lib/zlib.js, since Node 0.x). */
interface ZlibOutput {
  _outBuffer: Buffer;
  _outOffset: number;
  _chunkSize: number;
}

/**
 * One frame on libuv's thread pool, through a stream of its own rather than the one-shot
 * `zstdCompress`, whose result concatenates the pieces: one more copy of every compressed byte.
 *
 * The input goes in steps of STEP_BYTES, and before each step the stream is pointed at a pooled
 * output buffer with room for all the step can produce: node:zlib compresses into `_outBuffer`
 * from `_outOffset` up to `_chunkSize`, pushes slices of it, and allocates a fresh buffer only once
 * it is full, which this one never is. The pieces are lent from that buffer, which returns to
 * FRAME_OUTPUTS once the store has given every piece back. Should a later Node ignore these fields,
 * its own buffers are used and simply not lent (test/unit/chunk-pool.test.ts checks the pieces).
 */
function compressFrame(input: Buffer, level: number, sink: FrameSink): void {
  const z = zlib.createZstdCompress({
    // The smallest allowed: the buffer node:zlib allocates here is replaced before any output.
    chunkSize: zlib.constants.Z_MIN_CHUNK,
    params: {
      [zlib.constants.ZSTD_c_compressionLevel]: level,
      // The zstd CLI's default: `zstd -t` and Nix's decoder catch a damaged frame.
      [zlib.constants.ZSTD_c_checksumFlag]: 1,
    },
    // The frame header records the input size, as the one-shot zstd API writes it.
    pledgedSrcSize: input.length,
  });
  let output: Slab | undefined;
  const nextOutput = (): void => {
    output?.seal();
    output = FRAME_OUTPUTS.slab();
    const target: ZlibOutput = { _outBuffer: output.buffer, _outOffset: 0, _chunkSize: output.buffer.length };
    Object.assign(z, target);
  };
  z.on('data', (piece: Buffer) => sink.piece(output ? output.adopt(piece) : piece));
  z.once('error', (err) => {
    output?.seal();
    sink.done(err);
  });
  z.once('end', () => {
    output?.seal();
    sink.done(null);
  });
  let at = 0;
  const step = (): void => {
    const piece = input.subarray(at, at + STEP_BYTES);
    at += piece.length;
    nextOutput();
    // The last step's buffer also takes the frame's end (the rest of zstd's block, the checksum).
    if (at >= input.length) z.end(piece);
    else z.write(piece, (err) => void (err ? undefined : step()));
  };
  step();
}
