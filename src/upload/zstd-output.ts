// Where a zstd context's compressed output goes: into slabs lent by NarMemory (src/chunk-pool.ts)
// instead of node:zlib's own buffers. node:zlib allocates a fresh 1 MiB output buffer each time the
// previous one fills and lends its slices downstream, so a run allocated as many fresh bytes as it
// wrote compressed (303 MiB on a 626 MiB closure), which Node reports to V8 as external memory:
// about half of the run's full garbage collections (docs/architecture.md, "zstd output lent").
//
// node:zlib has no public way to compress into a caller's buffer. Its stream writes each step at
// `_outBuffer[_outOffset]` with `_chunkSize - _outOffset` bytes of room, read when the step starts,
// and allocates a buffer of its own only when a step fills that room (lib/zlib.js, processChunk and
// processCallback, unchanged in this respect since Node 0.x). Before each step, the steering points
// those fields at a slab with room for everything the step can produce. If a later Node ignored the
// fields, its own buffers would be used and passed on unlent, as before: slower, never wrong
// (test/unit/upload/zstd-output.test.ts fails then).
//
// The rule that keeps it safe: every piece cut from a slab is lent (registered with NarMemory)
// whoever asked, and a slab is sealed only once node:zlib no longer points at it, so a slab returns
// to its pool only when node:zlib will not write to it again and every piece has come back.
import type zlib from 'node:zlib';
import type { Slab } from '../chunk-pool.js';

/** A source of output slabs for one frame (NarMemory.output), or none: node:zlib's own buffers. */
export type OutputSource = () => Slab;

/** zstd's largest block: input it may hold from one step and compress in the next (zstd.h). */
const BLOCK_BYTES = 128 * 1024;

/**
 * The most output one step of `input` bytes can produce: ZSTD_COMPRESSBOUND (zstd.h) of the step
 * plus a block held from before, and a frame header, block headers and checksum to spare.
 */
export function stepOutputBound(input: number): number {
  const n = input + BLOCK_BYTES;
  return n + (n >> 8) + 1024;
}

/** node:zlib's stream fields that say where the next step's output goes (lib/zlib.js). */
interface ZlibOutput {
  _outBuffer: Buffer;
  _outOffset: number;
  _chunkSize: number;
}

export class OutputSteering {
  /** The slab node:zlib writes into now (or last wrote into). */
  #slab: Slab | undefined;

  constructor(private readonly z: zlib.ZstdCompress) {}

  /** Before a step of `input` bytes: make sure node:zlib writes its output into a slab with room. */
  aim(input: number, source: OutputSource | undefined): void {
    const need = stepOutputBound(input);
    const out = this.z as unknown as ZlibOutput;
    const current = this.#slab;
    if (current !== undefined && out._outBuffer === current.buffer) {
      if (current.buffer.length - out._outOffset >= need) return;
    }
    if (source === undefined) return; // node:zlib fills what is left, then moves to its own
    const slab = source();
    if (slab.buffer.length < need) return slab.seal();
    // Every piece node:zlib produced so far is lent before the slab it came from can be sealed.
    while (this.z.readableLength > 0 && this.z.read() !== null);
    out._outBuffer = slab.buffer;
    out._outOffset = 0;
    out._chunkSize = slab.buffer.length;
    // node:zlib no longer points at the previous slab: it may go back once its pieces have.
    current?.seal();
    this.#slab = slab;
  }

  /** A piece node:zlib produced: lent when it is a slab's, as it is otherwise. */
  lend(piece: Buffer): Buffer {
    const slab = this.#slab;
    if (slab === undefined) return piece;
    if (piece.buffer !== slab.buffer.buffer) {
      // node:zlib moved to a buffer of its own (the slab was full): the slab is done.
      this.#release();
      return piece;
    }
    const start = piece.byteOffset - slab.buffer.byteOffset;
    return slab.lend(start, start + piece.length);
  }

  #release(): void {
    this.#slab?.seal();
    this.#slab = undefined;
  }

  /** The stream is closed or destroyed (it writes nothing more): the slab goes back once its pieces have. */
  closed(): void {
    this.#release();
  }
}
