// One zstd frame per call, synchronously, on a context reused from call to call: for a worker
// thread (upload/nar-worker.ts) that compresses one whole NAR at a time. node:zlib's public
// zstdCompressSync makes and frees a context (about 3 MB at level 3) per call, and its stream's
// synchronous step (_processChunk without a callback) closes the stream after one call; the
// stream's handle steps the same context as often as we like, which is what node:zlib does inside
// both (lib/zlib.js, processChunkSync). When a Node lacks that handle, each call falls back to
// zstdCompressSync: the same bytes, only a context per call.
import zlib from 'node:zlib';

/** The native handle's synchronous step and the state it reports back (lib/zlib.js). */
interface SyncHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
  ): void;
}
interface StreamInternals {
  _handle?: SyncHandle | null;
  _writeState?: Uint32Array;
}

/** Room for one frame of `n` bytes of input at its worst (zstd.h, ZSTD_COMPRESSBOUND, rounded up). */
export function wholeZstdBound(n: number): number {
  return n + (n >> 8) + 64 * 1024;
}

export class WholeZstd {
  readonly #params: Record<number, number>;
  readonly #stream: zlib.ZstdCompress;

  constructor(readonly level: number) {
    this.#params = {
      [zlib.constants.ZSTD_c_compressionLevel]: level,
      // No content checksum, as loft's other zstd writers (upload/zstd-contexts.ts says why).
      [zlib.constants.ZSTD_c_checksumFlag]: 0,
    };
    this.#stream = zlib.createZstdCompress({ params: this.#params });
  }

  /**
   * `input` as one frame with its size in the header, written at the start of `out`; the bytes
   * written, or undefined when `out` has less room than wholeZstdBound(input.length).
   */
  compress(input: Buffer, out: Buffer): number | undefined {
    if (out.length < wholeZstdBound(input.length)) return undefined;
    const { _handle: handle, _writeState: state } = this.#stream as unknown as StreamInternals;
    if (typeof handle?.writeSync !== 'function' || !(state instanceof Uint32Array)) {
      const file = zlib.zstdCompressSync(input, { params: this.#params });
      return file.copy(out);
    }
    // With room for the bound, one step takes every byte and ends the frame (ZSTD_e_end).
    handle.writeSync(zlib.constants.ZSTD_e_end, input, 0, input.length, out, 0, out.length);
    const outLeft = state[0]!;
    const inLeft = state[1]!;
    return inLeft === 0 && outLeft > 0 ? out.length - outLeft : undefined;
  }

  close(): void {
    this.#stream.close();
  }
}
