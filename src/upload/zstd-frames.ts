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
  stream: FrameStream;
}

export class ZstdFrameCompressor extends Transform {
  /** Input of a frame too small so far for a slot, kept by reference. */
  #small: Buffer[] = [];
  /** The frame being filled in its slot's buffer, compressing as it fills. */
  #open: Frame | undefined;
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
      if (this.#open === undefined && this.#fillBytes + rest <= SMALL_FRAME_BYTES) {
        // Kept by reference until the frame starts (then copied, and given back if it was whole).
        this.#small.push(offset === 0 ? chunk : chunk.subarray(offset));
        this.#fillBytes += rest;
        return;
      }
      if (this.#open === undefined) {
        // The slot is taken before the frame grows past small, so filling counts against memory.
        const slot = await this.pool.acquire();
        if (this.destroyed) return slot.release();
        let at = 0;
        for (const piece of this.#small.splice(0)) {
          at += piece.copy(slot.buffer, at);
          giveBack(piece);
        }
        this.#open = this.#startFrame(slot.buffer, slot, undefined);
      }
      // Copied, not kept: the stream's chunks are freed at once and the frame buffer is reused.
      const open = this.#open;
      const n = chunk.copy(open.slot!.buffer, this.#fillBytes, offset);
      this.#fillBytes += n;
      offset += n;
      if (this.#fillBytes === this.pool.frameBytes) this.#closeOpenFrame();
      else open.stream.filled(this.#fillBytes);
    }
    // Every byte is in a frame buffer now; a pooled chunk goes back to its pool.
    giveBack(chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#open) this.#closeOpenFrame();
    // An empty input still gets one (empty) frame: a zero-byte file is not a zstd file.
    else if (this.#fillBytes > 0 || this.#framesStarted === 0) {
      // A small frame is gathered into a pooled read buffer (it is at most one), given back when done.
      const gathered = this.#concatSmall();
      this.#startFrame(gathered, undefined, gathered, gathered.length).stream.finish(gathered.length);
      this.#fillBytes = 0;
    }
    this.#flushCallback = callback;
    this.#pushReady();
  }

  #closeOpenFrame(): void {
    this.#open!.stream.finish(this.#fillBytes);
    this.#open = undefined;
    this.#fillBytes = 0;
  }

  /** A frame over `input`, which is filled from the start and compressed as it fills. */
  #startFrame(
    input: Buffer,
    slot: FrameSlot | undefined,
    gathered: Buffer | undefined,
    knownSize?: number,
  ): Frame {
    this.#framesStarted++;
    const frame: Frame = {
      pieces: [],
      done: false,
      slot,
      stream: new FrameStream(input, this.level, knownSize, {
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
      }),
    };
    this.#frames.push(frame);
    return frame;
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
    // A frame still compressing gives its slot back when its stream settles (see #startFrame); one
    // still waiting for input is stopped.
    for (const frame of this.#frames) {
      if (frame.done) frame.slot?.release();
      else frame.stream.abort();
    }
    this.#frames.length = 0;
    this.#open = undefined;
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
 * The input is compressed while it is still being filled: a step of STEP_BYTES goes to the thread
 * pool as soon as it is there, so a frame's compression overlaps the reading and hashing of the
 * rest instead of waiting for all 16 MiB (both cores were not kept busy otherwise). A large frame's
 * size is therefore not known when it starts, and its header records none (every zstd decoder,
 * Nix's included, reads frames without one); a small frame, gathered whole, records its size, which
 * also lets zstd size its tables to it.
 *
 * Before each step the stream is pointed at a pooled output buffer with room for all the step can
 * produce: node:zlib compresses into `_outBuffer` from `_outOffset` up to `_chunkSize`, pushes
 * slices of it, and allocates a fresh buffer only once it is full, which this one never is. The
 * pieces are lent from that buffer, which returns to FRAME_OUTPUTS once the store has given every
 * piece back. Should a later Node ignore these fields, its own buffers are used and simply not lent
 * (test/unit/chunk-pool.test.ts checks the pieces).
 */
class FrameStream {
  readonly #z: zlib.ZstdCompress;
  #output: Slab | undefined;
  /** Input bytes handed to zstd, and bytes of `input` filled so far. */
  #fed = 0;
  #filled = 0;
  #final = false;
  /** A step is on the thread pool: the next waits for it. */
  #busy = false;
  #settled = false;

  constructor(
    private readonly input: Buffer,
    level: number,
    knownSize: number | undefined,
    private readonly sink: FrameSink,
  ) {
    this.#z = zlib.createZstdCompress({
      ...(knownSize === undefined ? {} : { pledgedSrcSize: knownSize }),
      // The smallest allowed: the buffer node:zlib allocates here is replaced before any output.
      chunkSize: zlib.constants.Z_MIN_CHUNK,
      params: {
        [zlib.constants.ZSTD_c_compressionLevel]: level,
        // The zstd CLI's default: `zstd -t` and Nix's decoder catch a damaged frame.
        [zlib.constants.ZSTD_c_checksumFlag]: 1,
      },
    });
    this.#z.on('data', (piece: Buffer) => sink.piece(this.#output ? this.#output.adopt(piece) : piece));
    this.#z.once('error', (err) => this.#settle(err));
    this.#z.once('end', () => this.#settle(null));
  }

  /** The first `n` bytes of the input are filled. */
  filled(n: number): void {
    this.#filled = n;
    this.#pump();
  }

  /** The input is complete at `n` bytes: compress the rest and end the frame. */
  finish(n: number): void {
    this.#filled = n;
    this.#final = true;
    this.#pump();
  }

  /** Stops a frame that is still waiting for input; its sink hears of it as an error. */
  abort(): void {
    if (this.#settled || this.#final) return;
    this.#final = true;
    if (!this.#busy) this.#stop();
  }

  #pump(): void {
    if (this.#busy || this.#settled) return;
    const ready = this.#filled - this.#fed;
    if (ready < STEP_BYTES && !this.#final) return;
    const piece = this.input.subarray(this.#fed, this.#fed + Math.min(ready, STEP_BYTES));
    this.#fed += piece.length;
    this.#nextOutput();
    if (this.#final && this.#fed === this.#filled) {
      // The last step's buffer also takes the frame's end (the rest of zstd's block, the checksum).
      if (piece.length > 0) this.#z.end(piece);
      else this.#z.end();
      return;
    }
    this.#busy = true;
    this.#z.write(piece, (err) => {
      this.#busy = false;
      if (err) return; // 'error' settles the frame
      this.#pump();
    });
  }

  #nextOutput(): void {
    this.#output?.seal();
    this.#output = FRAME_OUTPUTS.slab();
    const target: ZlibOutput = {
      _outBuffer: this.#output.buffer,
      _outOffset: 0,
      _chunkSize: this.#output.buffer.length,
    };
    Object.assign(this.#z, target);
  }

  #stop(): void {
    this.#z.destroy();
    this.#settle(new Error('frame stopped before its input was complete'));
  }

  #settle(err: Error | null): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#output?.seal();
    this.sink.done(err);
  }
}
