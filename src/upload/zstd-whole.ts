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

export class WholeZstd {
  readonly #params: Record<number, number>;
  readonly #stream: zlib.ZstdCompress;
  #out: Buffer;

  constructor(readonly level: number) {
    this.#params = {
      [zlib.constants.ZSTD_c_compressionLevel]: level,
      // No content checksum, as loft's other zstd writers (upload/zstd-contexts.ts says why).
      [zlib.constants.ZSTD_c_checksumFlag]: 0,
    };
    this.#stream = zlib.createZstdCompress({ params: this.#params });
    this.#out = Buffer.allocUnsafeSlow(0);
  }

  /**
   * `input` as one frame with its size in the header. The result is a view of this object's output
   * buffer, valid until the next call: copy it out first.
   */
  compress(input: Buffer): Buffer {
    const { _handle: handle, _writeState: state } = this.#stream as unknown as StreamInternals;
    if (typeof handle?.writeSync !== 'function' || !(state instanceof Uint32Array)) {
      return zlib.zstdCompressSync(input, { params: this.#params });
    }
    // zstd's bound for one frame (ZSTD_COMPRESSBOUND): one step always ends the frame.
    const bound = input.length + (input.length >> 8) + 64 * 1024;
    if (this.#out.length < bound) this.#out = Buffer.allocUnsafeSlow(bound);
    let inOff = 0;
    let inLen = input.length;
    let outOff = 0;
    for (;;) {
      handle.writeSync(
        zlib.constants.ZSTD_e_end,
        input,
        inOff,
        inLen,
        this.#out,
        outOff,
        this.#out.length - outOff,
      );
      const outLeft = state[0]!;
      const inLeft = state[1]!;
      outOff = this.#out.length - outLeft;
      inOff += inLen - inLeft;
      inLen = inLeft;
      // The frame is complete once every byte is taken and zstd left room in the output.
      if (inLen === 0 && outLeft > 0) return this.#out.subarray(0, outOff);
      if (outLeft === 0) {
        const more = Buffer.allocUnsafeSlow(this.#out.length * 2);
        this.#out.copy(more, 0, 0, outOff);
        this.#out = more;
      }
    }
  }

  close(): void {
    this.#stream.close();
  }
}
