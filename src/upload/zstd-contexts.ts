// zstd compression contexts reused from frame to frame and from NAR to NAR. A context is a
// node:zlib zstd stream that is never ended: each frame is one ZSTD_e_end step, after which zstd
// starts the next frame on the same context (zstd.h, ZSTD_compressStream2: "the next call
// starts a new frame"), with the frame's parameters (level, no checksum) kept. A fresh context per frame
// cost its allocation (about 3 MB at level 3), the page faults of touching it, and, since Node
// reports that memory to V8 as external, a share of the full garbage collections it set off
// (docs/architecture.md, "zstd contexts reused").
//
// Frames stay independent (the zstd format's frames share nothing), and the output is the same
// whichever context a frame gets (test/unit/upload/zstd-contexts.test.ts), which resuming a
// multipart upload relies on.
import zlib from 'node:zlib';
import { OutputSteering, type OutputSource } from './zstd-output.js';

/**
 * node:zlib's output buffer when a frame has no source of lent output (upload/zstd-output.ts): a
 * frame's pieces are slices of it, and the next frame fills the rest, so small frames share one
 * buffer instead of each allocating its own.
 */
const OUTPUT_BYTES = 1024 * 1024;
/**
 * A frame's output goes downstream in pieces of at most this much. Compressed in one step, a frame
 * of incompressible input is one piece of 4 MiB; the directory store's writes of such pieces cost
 * the kernel ten times the CPU to copy into the page cache (`copy_folio_from_iter_atomic`, 730-810
 * against 50-93 perf samples per bench closure, Linux 6.18), so the pieces are cut as the stepped
 * frames used to produce them (docs/architecture.md, "zstd frames in one step").
 */
const PIECE_BYTES = 1024 * 1024;
/** Idle contexts kept per level; more are closed when they come back. */
const KEEP_IDLE = 8;
/** Idle contexts are closed after this long without a frame (a daemon between uploads). */
const IDLE_CLOSE_MS = 30_000;

export interface FrameSink {
  /** A compressed piece of the frame, in order. */
  piece(p: Buffer): void;
  /** The frame is complete (null) or failed; called once. */
  done(err: Error | null): void;
}

/** node:zlib's internal step of a stream (lib/zlib.js), present since Node 0.x. */
interface WholeStep {
  _processChunk?: (chunk: Buffer, flushFlag: number, cb: () => void) => void;
}

/** One frame at a time on one zstd context: start(), then compress() or destroy(). */
export class ZstdContext {
  readonly #z: zlib.ZstdCompress;
  readonly #output: OutputSteering;
  #sink: FrameSink | undefined;
  #source: OutputSource | undefined;
  #broken = false;

  constructor(readonly level: number) {
    this.#z = zlib.createZstdCompress({
      chunkSize: OUTPUT_BYTES,
      params: {
        [zlib.constants.ZSTD_c_compressionLevel]: level,
        // No content checksum (zstd's own default), as `nix copy --to file://...?compression=zstd`
        // writes (Nix 2.8 through libarchive: frame header descriptor 0x00) and as loft's small
        // NARs (wholeCompressor) always were. The narinfo's FileHash covers every byte of the file
        // and its NarHash the decoded NAR, which Nix checks when it substitutes; the XXH64 over
        // every frame was about 1.3 % of the run's CPU samples for no check anyone makes.
        [zlib.constants.ZSTD_c_checksumFlag]: 0,
      },
    });
    this.#output = new OutputSteering(this.#z);
    // Lent whoever the frame is: a slab's piece must come back before the slab is reused.
    this.#z.on('data', (p: Buffer) => {
      for (let at = 0; at < p.length; at += PIECE_BYTES) {
        this.#sink?.piece(this.#output.lend(p.subarray(at, at + PIECE_BYTES)));
      }
    });
    this.#z.on('error', (err) => this.#fail(err));
  }

  /** A frame begins; its compressed output goes into slabs from `output` when given. */
  start(sink: FrameSink, output?: OutputSource): void {
    this.#sink = sink;
    this.#source = output;
  }

  /**
   * Compresses `input` as the whole frame, in one step on the thread pool: its pieces, then
   * done(null); the context is free again.
   *
   * One step with ZSTD_e_end, not steps with ZSTD_e_continue and a flush at the end: given the
   * frame's end with its first input, zstd knows the frame's size (ZSTD_compressStream2 pledges
   * it, zstd.h) and compresses straight from the input, where a frame fed in steps is first copied
   * into zstd's own input buffer and, once that buffer wraps, matched in its slower two-segment
   * mode (ZSTD_compressBlock_doubleFast_extDict at level 3). Measured on the bench closure's NARs:
   * 14 % less CPU for the same bytes, plus the content size in each frame's header, which every
   * zstd decoder reads (docs/architecture.md, "zstd frames in one step").
   */
  compress(input: Buffer): void {
    this.#output.aim(input.length, this.#source);
    const z = this.#z as unknown as WholeStep;
    if (typeof z._processChunk === 'function') {
      // node:zlib's own step (lib/zlib.js, ZlibBase.prototype._processChunk): the input with the
      // flush flag in one call, its output pushed as it is made, `cb` once every byte is taken.
      z._processChunk(input, zlib.constants.ZSTD_e_end, () => this.#frameEnded());
      return;
    }
    // A node:zlib without that method: the stream's write, then the frame's end.
    if (input.length > 0) this.#z.write(input);
    this.#z.flush(zlib.constants.ZSTD_e_end, () => this.#frameEnded());
  }

  #frameEnded(): void {
    // node:zlib pushes a step's output before calling back, and a flowing stream emits it at
    // once; anything still buffered belongs to this frame and goes to its sink now, before the
    // context serves another frame.
    while (this.#z.readableLength > 0 && this.#z.read() !== null);
    const sink = this.#sink;
    this.#sink = undefined;
    this.#source = undefined;
    if (this.#broken || sink === undefined) return;
    giveBack(this);
    sink.done(null);
  }

  /** Stops a frame part-way: the context is closed, never reused; the sink hears `err`. */
  destroy(err: Error): void {
    this.#fail(err);
    this.#z.destroy();
    this.#output.closed();
  }

  close(): void {
    this.#broken = true;
    this.#z.close();
    this.#output.closed();
  }

  #fail(err: Error): void {
    this.#broken = true;
    const sink = this.#sink;
    this.#sink = undefined;
    sink?.done(err);
  }
}

const idle = new Map<number, ZstdContext[]>();
let closeTimer: NodeJS.Timeout | undefined;

/** A context at `level`: an idle one when there is one, else a new one. */
export function takeZstdContext(level: number): ZstdContext {
  return idle.get(level)?.pop() ?? new ZstdContext(level);
}

function giveBack(ctx: ZstdContext): void {
  let list = idle.get(ctx.level);
  if (list === undefined) idle.set(ctx.level, (list = []));
  if (list.length >= KEEP_IDLE) return ctx.close();
  list.push(ctx);
  closeTimer?.refresh();
  closeTimer ??= setTimeout(closeIdleZstdContexts, IDLE_CLOSE_MS).unref();
}

/** Closes every idle context (their memory goes back); later frames open new ones. */
export function closeIdleZstdContexts(): void {
  for (const list of idle.values()) for (const ctx of list.splice(0)) ctx.close();
  if (closeTimer !== undefined) clearTimeout(closeTimer);
  closeTimer = undefined;
}

/** Idle contexts, for tests. */
export function idleZstdContexts(): number {
  let n = 0;
  for (const list of idle.values()) n += list.length;
  return n;
}
