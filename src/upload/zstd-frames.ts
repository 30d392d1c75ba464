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
import { ChunkPool } from '../chunk-pool.js';
import type { ComputePool, FrameSlot } from './compute-pool.js';
import { takeZstdContext, type FrameSink, type ZstdContext } from './zstd-contexts.js';
import type { OutputSource } from './zstd-output.js';

export { ZSTD_FRAME_BYTES } from './compute-pool.js';

/**
 * A frame that ends within this many bytes needs no slot: most NARs are small, and a slot held while
 * a small path's many files are read would leave the cores idle (the reads wait on the disk). What
 * such frames hold is bounded by the number of uploads in flight times this. A small frame is
 * gathered, copied, into one buffer of SMALL_FRAMES, taken and recycled here.
 */
const SMALL_FRAME_BYTES = 1024 * 1024;
const SMALL_FRAMES = new ChunkPool(SMALL_FRAME_BYTES, 16, true);

export interface ZstdFrameOptions {
  /**
   * Called with every input chunk exactly once, when no byte of it is needed any more (copied into
   * a frame buffer): the chunk's lender may reuse its memory then (src/chunk-pool.ts).
   */
  consumed?: (chunk: Buffer) => void;
  /**
   * Where compressed output goes (NarMemory.output): its pieces are lent, and whoever reads them
   * last gives each back to the same lender (upload/upload-path.ts wires the object store's
   * PutOptions.consumed). Without it, node:zlib's own buffers, left to the garbage collector.
   */
  output?: OutputSource;
  /**
   * Hears every input byte once, in order, a frame at a time: a large frame's just after its
   * compression has started on the pool, so the NAR's sha256 on the main thread overlaps the
   * frame's compression instead of lengthening the time its slot fills without compressing.
   */
  inputHash?: InputHash;
}

/** What hashes the compressor's input (a HashMeter over the NAR). */
export interface InputHash {
  update(bytes: Buffer): void;
}

interface Frame {
  /** Compressed pieces not yet pushed; the first frame's go downstream as they are produced. */
  pieces: Buffer[];
  done: boolean;
  slot: FrameSlot | undefined;
  stream: FrameStream;
}

export class ZstdFrameCompressor extends Transform {
  /** The frame too small so far for a slot, gathered (copied) into a SMALL_FRAMES buffer. */
  #small: Buffer | undefined;
  /** The frame being filled in its slot's buffer; it compresses once full (or at the end). */
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
    private readonly opts: ZstdFrameOptions = {},
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.#take(chunk).then(() => {
      // Every byte of the chunk is in a frame buffer now.
      this.opts.consumed?.(chunk);
      callback();
    }, callback);
  }

  async #take(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length && !this.destroyed) {
      const rest = chunk.length - offset;
      if (this.#open === undefined && this.#fillBytes + rest <= SMALL_FRAME_BYTES) {
        this.#small ??= SMALL_FRAMES.take();
        this.#fillBytes += chunk.copy(this.#small, this.#fillBytes, offset);
        return;
      }
      if (this.#open === undefined) {
        // The slot is taken before the frame grows past small, so filling counts against memory.
        const slot = await this.pool.acquire();
        if (this.destroyed) return slot.release();
        if (this.#small) {
          this.#small.copy(slot.buffer, 0, 0, this.#fillBytes);
          SMALL_FRAMES.recycle(this.#small);
          this.#small = undefined;
        }
        this.#open = this.#startFrame(slot.buffer, slot, undefined);
      }
      const open = this.#open;
      const n = chunk.copy(open.slot!.buffer, this.#fillBytes, offset);
      this.#fillBytes += n;
      offset += n;
      if (this.#fillBytes === this.pool.frameBytes) this.#closeOpenFrame();
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.#open) this.#closeOpenFrame();
    // An empty input still gets one (empty) frame: a zero-byte file is not a zstd file.
    else if (this.#fillBytes > 0 || this.#framesStarted === 0) {
      // A small frame waits for its turn (ComputePool.smallFrameTurn), which bounds the zstd
      // contexts live at once; it is the last frame, so nothing else waits behind it.
      this.pool.smallFrameTurn().then((endTurn) => {
        if (this.destroyed) return endTurn();
        this.#startSmallFrame(endTurn);
        this.#flushed(callback);
      }, callback);
      return;
    }
    this.#flushed(callback);
  }

  #flushed(callback: TransformCallback): void {
    this.#flushCallback = callback;
    this.#pushReady();
  }

  /** The frame gathered in a SMALL_FRAMES buffer, which goes back there when it is compressed. */
  #startSmallFrame(endTurn: () => void): void {
    const gathered = this.#small ?? SMALL_FRAMES.take();
    this.#small = undefined;
    const input = gathered.subarray(0, this.#fillBytes);
    this.#fillBytes = 0;
    // Before the frame starts: its buffer goes back to SMALL_FRAMES once compressed.
    this.opts.inputHash?.update(input);
    this.#startFrame(input, undefined, () => {
      SMALL_FRAMES.recycle(gathered);
      endTurn();
    }).stream.finish(input.length);
  }

  #closeOpenFrame(): void {
    const open = this.#open!;
    const n = this.#fillBytes;
    this.#open = undefined;
    this.#fillBytes = 0;
    open.stream.finish(n);
    // The pool only reads the buffer, and the slot comes back once the compression has ended
    // (asynchronously): hashing it now overlaps that compression, where hashed while it filled
    // it lengthened the time the slot held memory without compressing (compute-pool.ts).
    this.opts.inputHash?.update(open.slot!.buffer.subarray(0, n));
  }

  /**
   * A frame over `input`, which is filled from the start and compressed once complete; `settled`
   * runs once its compression has ended, however (a small frame's buffer and turn go back).
   */
  #startFrame(input: Buffer, slot: FrameSlot | undefined, settled?: () => void): Frame {
    this.#framesStarted++;
    const frame: Frame = {
      pieces: [],
      done: false,
      slot,
      stream: new FrameStream(input, this.level, this.opts.output, slot && (() => this.pool.compressTurn()), {
        piece: (p) => {
          frame.pieces.push(p);
          if (frame === this.#frames[0]) this.#pushReady();
        },
        done: (err) => {
          settled?.();
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
    if (this.#small) SMALL_FRAMES.recycle(this.#small);
    this.#small = undefined;
    callback(err);
  }
}

/**
 * One frame on libuv's thread pool, on a reused zstd context (upload/zstd-contexts.ts), compressed
 * in one step once its input is complete. A large frame first waits for a compression turn
 * (ComputePool.compressTurn), and takes its context with it: a frame that fills, or waits, holds
 * its input buffer but no zstd memory.
 *
 * Why not compress while the frame fills (1 MiB steps, as loft did until this round): zstd copies
 * input that comes in steps into its own buffer and matches it in a slower mode once that buffer
 * wraps, about 14 % more CPU for zstd (upload/zstd-contexts.ts, compress()). The overlap the steps
 * gave comes from the other slots instead: while frames compress, the next one fills.
 *
 * The output goes into slabs lent by the run's NarMemory when the caller gives a source
 * (upload/zstd-output.ts says how and why), else into node:zlib's own buffers.
 */
class FrameStream {
  #ctx: ZstdContext | undefined;
  #endTurn: (() => void) | undefined;
  #final = false;
  #settled = false;

  /** @param turn waits for a compression turn (large frames); a small frame has its own already */
  constructor(
    private readonly input: Buffer,
    private readonly level: number,
    private readonly output: OutputSource | undefined,
    private readonly turn: (() => Promise<() => void>) | undefined,
    private readonly sink: FrameSink,
  ) {}

  /** The input is complete at `n` bytes: compress it (after a turn) and end the frame. */
  finish(n: number): void {
    if (this.#final) return;
    this.#final = true;
    const input = this.input.subarray(0, n);
    if (this.turn === undefined) return this.#compress(input);
    this.turn()
      .then((endTurn) => {
        this.#endTurn = endTurn;
        // Stopped while it waited: the turn passes straight on.
        if (this.#settled) return endTurn();
        this.#compress(input);
      })
      // A context that cannot be made fails this frame (and its upload), not the process.
      .catch((err: unknown) => this.#settle(err instanceof Error ? err : new Error(String(err))));
  }

  /** Stops a frame that is not compressing yet; its sink hears of it as an error. */
  abort(): void {
    if (this.#settled || this.#ctx !== undefined) return;
    this.#settle(new Error('frame stopped before its compression started'));
  }

  #compress(input: Buffer): void {
    const ctx = takeZstdContext(this.level);
    this.#ctx = ctx;
    ctx.start({ piece: (p) => this.sink.piece(p), done: (err) => this.#settle(err) }, this.output);
    ctx.compress(input);
  }

  #settle(err: Error | null): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#endTurn?.();
    this.sink.done(err);
  }
}
