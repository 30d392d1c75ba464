// A pass-through stream that hashes and counts what flows through it. Two of them sit in each
// upload: one over the NAR (NarHash/NarSize, checked against Nix) and one over the compressed bytes
// (FileHash/FileSize, written to the narinfo). The NAR's meter of a large path hashes on the hash
// thread (src/upload/hash-thread.ts) so the main thread goes on reading meanwhile.
import { createHash, type Hash as CryptoHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { ThreadHash } from './hash-thread.js';

export class HashMeter extends Transform {
  #hash: CryptoHash | undefined;
  #bytes = 0;
  #digest: Buffer | undefined;
  /** Called with each chunk's size, for progress display. */
  onBytes: ((n: number) => void) | undefined;

  /** @param remote hash on the hash thread instead of in line */
  constructor(private readonly remote?: ThreadHash) {
    super();
    if (remote === undefined) this.#hash = createHash('sha256');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.#bytes += chunk.length;
    this.onBytes?.(chunk.length);
    if (this.#hash) {
      this.#hash.update(chunk);
      return callback(null, chunk);
    }
    // Passed on once copied for the thread: the compressor may then give the chunk back for reuse.
    this.remote!.update(chunk).then(() => callback(null, chunk), callback);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (err) this.remote?.drop();
    callback(err);
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The sha256 of everything seen, from an in-line meter; only meaningful once the stream has ended. */
  digest(): Buffer {
    if (!this.#hash) throw new Error('a meter hashing on the hash thread has an asynchronous digest');
    this.#digest ??= this.#hash.digest();
    return this.#digest;
  }

  /** The sha256 of everything seen, however it was hashed; call once the stream has ended. */
  async finalDigest(): Promise<Buffer> {
    this.#digest ??= this.#hash ? this.#hash.digest() : await this.remote!.digest();
    return this.#digest;
  }
}
