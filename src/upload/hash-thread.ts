// sha256 on a thread of its own, for the NarHash of large NARs. The main thread reads and encodes
// the NAR, hands each chunk to this thread and goes on; the NarHash (about a second of CPU per GiB)
// is computed beside it instead of in line. Why not libuv's pool, like zstd: Node offers no
// incremental hash off the main thread (WebCrypto digests whole buffers only).
//
// Chunks travel through a SharedArrayBuffer of SEGMENTS segments: a chunk is copied into free
// segments and posted at once (never held back to fill a segment), and the thread frees each
// segment after hashing it. So a hasher never holds a segment while it waits for anything else,
// and waiting for a free segment always ends: the thread depends on nothing. Messages on one port
// arrive in order, so each hash sees its chunks in order.
import { Worker } from 'node:worker_threads';

const SEGMENT_BYTES = 1024 * 1024;
const SEGMENTS = 8;

// The thread's whole program, run as CommonJS from a string: no file to locate next to a bundle,
// a build output or a test runner's sources.
const THREAD_CODE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let ring;
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.ring !== undefined) return void (ring = Buffer.from(m.ring));
  if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (h === undefined) hashes.set(m.id, (h = createHash('sha256')));
    h.update(ring.subarray(m.offset, m.offset + m.length));
    parentPort.postMessage({ free: m.segment });
  } else if (m.op === 'digest') {
    const h = hashes.get(m.id) ?? createHash('sha256');
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, digest: h.digest() });
  } else if (m.op === 'drop') hashes.delete(m.id);
});
`;

/** One sha256 computed on the hash thread. */
export interface ThreadHash {
  /** Resolves once the chunk is copied: the caller may then pass the chunk on or reuse it. */
  update(chunk: Buffer): Promise<void>;
  digest(): Promise<Buffer>;
  /** The hash is no longer wanted (the upload failed or was cancelled). */
  drop(): void;
}

export class HashThread {
  #worker: Worker | undefined;
  readonly #ring = new SharedArrayBuffer(SEGMENTS * SEGMENT_BYTES);
  readonly #view = Buffer.from(this.#ring);
  readonly #free: number[] = Array.from({ length: SEGMENTS }, (_, i) => i);
  readonly #segmentWaiters: Array<() => void> = [];
  readonly #digests = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();
  #nextId = 0;
  /** Messages whose answer is awaited: the thread keeps the process alive only while there are. */
  #pending = 0;
  #failure: Error | undefined;

  hasher(): ThreadHash {
    const id = this.#nextId++;
    let dropped = false;
    return {
      update: async (chunk) => {
        for (let at = 0; at < chunk.length;) {
          const segment = await this.#segment();
          const length = Math.min(SEGMENT_BYTES, chunk.length - at);
          const offset = segment * SEGMENT_BYTES;
          chunk.copy(this.#view, offset, at, at + length);
          at += length;
          this.#post({ op: 'update', id, segment, offset, length });
        }
      },
      digest: () =>
        new Promise<Buffer>((resolve, reject) => {
          if (this.#failure) return reject(this.#failure);
          this.#digests.set(id, { resolve, reject });
          this.#post({ op: 'digest', id });
        }),
      drop: () => {
        if (dropped || this.#worker === undefined) return;
        dropped = true;
        this.#worker.postMessage({ op: 'drop', id });
      },
    };
  }

  async #segment(): Promise<number> {
    for (;;) {
      if (this.#failure) throw this.#failure;
      const segment = this.#free.pop();
      if (segment !== undefined) return segment;
      await new Promise<void>((resolve) => this.#segmentWaiters.push(resolve));
    }
  }

  #post(message: { op: string; id: number; segment?: number; offset?: number; length?: number }): void {
    const worker = this.#start();
    if (this.#pending++ === 0) worker.ref();
    worker.postMessage(message);
  }

  #answered(): void {
    if (--this.#pending === 0) this.#worker?.unref();
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(THREAD_CODE, { eval: true });
    worker.postMessage({ ring: this.#ring });
    worker.on('message', (m: { free?: number; id?: number; digest?: Uint8Array }) => {
      this.#answered();
      if (m.free !== undefined) {
        this.#free.push(m.free);
        this.#segmentWaiters.shift()?.();
        return;
      }
      const waiter = this.#digests.get(m.id!);
      this.#digests.delete(m.id!);
      waiter?.resolve(Buffer.from(m.digest!));
    });
    worker.on('error', (err: Error) => this.#fail(err));
    worker.on('exit', (code) => this.#fail(new Error(`the hash thread exited (code ${code})`)));
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const d of this.#digests.values()) d.reject(this.#failure);
    this.#digests.clear();
    for (const wake of this.#segmentWaiters.splice(0)) wake();
  }

  /** Ends the thread (tests; a process simply exits with it idle and unref'd). */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) {
      worker.removeAllListeners('exit');
      await worker.terminate();
    }
  }
}
