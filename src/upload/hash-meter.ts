// A pass-through stream that hashes and counts what flows through it. Two of them sit in each
// upload: one over the NAR (NarHash/NarSize, checked against Nix) and one over the compressed bytes
// (FileHash/FileSize, written to the narinfo). With zstd the NAR's meter is fed by the compressor
// instead of standing in the pipeline (upload/upload-path.ts, streamNar).
import { createHash, type Hash as CryptoHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export class HashMeter extends Transform {
  #hash: CryptoHash = createHash('sha256');
  #bytes = 0;
  #digest: Buffer | undefined;
  /** Called with each chunk's size, for progress display. */
  onBytes: ((n: number) => void) | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.update(chunk);
    callback(null, chunk);
  }

  /**
   * Hashes and counts `chunk` without it passing through: for a compressor that sees every byte
   * anyway and hashes its input at a better moment (upload/zstd-frames.ts, inputHash).
   */
  update(chunk: Buffer): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    this.onBytes?.(chunk.length);
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The sha256 of everything seen; only meaningful once the stream has ended. */
  digest(): Buffer {
    this.#digest ??= this.#hash.digest();
    return this.#digest;
  }
}
