// Worker threads that turn a whole middle-sized NAR into its stored file (upload/nar-worker.ts).
//
// Why: a closure's many paths of 64 KiB to a few MiB each cost the main thread a walk of the tree,
// two sha256 passes and the streaming pipeline's set-up, and that thread, not the cores, was what
// the bench closure's second half waited for (60-90 % busy while libuv's pool idled; docs/
// architecture.md, "Every core's price"). On workers, such a path is encoded, hashed and compressed
// beside the main thread, which only stores the result and writes the narinfo.
//
// What stays on the streaming path: small NARs (compressed in one call on the main thread in well
// under a millisecond), larger ones (frames on libuv's pool, bounded memory whatever the size), xz,
// and a path whose listing is wanted. A worker never reports an error of its own: whatever goes
// wrong, the job comes back undefined and the caller takes the streaming path, whose checks and
// messages are the ones users and tests know.
//
// Memory: each worker has a buffer for the NAR it makes (maxNarBytes, resident as far as NARs have
// filled it), one zstd context and the buffers of compressed files, which it lends to the main
// thread and gets back once stored (reused, not allocated per NAR). The NAR buffer is set aside
// from the run's memory budget when the pool is made. Workers start on their first job and end
// when the daemon goes idle (close(); cli/memory-use.ts), so an idle daemon holds none of them; an
// idle worker never keeps a one-shot run from exiting.
import { Worker } from 'node:worker_threads';
import type { Compression } from '../format/bucket-layout.js';
import type { MemoryBudget } from '../memory-budget.js';

/** NARs above this stay on the streaming path: one zstd frame of upload/compute-pool.ts. */
export const WORKER_NAR_BYTES = 4 * 1024 * 1024;

/**
 * Workers that fail to start or die this many times in a row (a broken install, a runtime without
 * worker threads) end the pool's use for the run: every NAR streams, as without workers.
 */
const DEATHS_TO_STOP = 3;

export interface NarJob {
  id: number;
  path: string;
  narSize: number;
  compression: Exclude<Compression, 'xz'>;
  level: number;
}

/** What a worker is started with. */
export interface NarWorkerData {
  maxNarBytes: number;
}

export type NarWorkerAnswer =
  | { id: number; narHash: Uint8Array; file: ArrayBuffer; fileLength: number; fileHash: Uint8Array }
  | { id: number; fallback: string };

/** A NAR the worker produced: its hash still to be checked against Nix's. */
export interface WorkerNar {
  narHash: Buffer;
  /** The compressed file, in memory lent by the worker. */
  file: Buffer;
  fileHash: Buffer;
  /**
   * Hands the file's memory back to its worker for the next NAR: call it once the file is stored
   * and nothing reads it any more (every view of it reads as empty afterwards). A file never given
   * back is left to the garbage collector.
   */
  giveBack(): void;
}

interface Waiting {
  job: NarJob;
  resolve: (done: WorkerNar | undefined) => void;
}

interface Slot {
  worker: Worker;
  busy: Waiting | undefined;
}

// Run from dist/ the entry is the compiled .js beside this file; from src/ (the unit tests) the
// .ts, loaded through tsx as the tests are. Nothing else of the parent's command line is passed
// on: a worker refuses some of its flags (--input-type, for one), and needs none of them.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const ENTRY = new URL(FROM_SOURCE ? './nar-worker.ts' : './nar-worker.js', import.meta.url);
const EXEC_ARGV = FROM_SOURCE ? ['--import', 'tsx'] : [];

export class NarWorkers {
  readonly threads: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Waiting[] = [];
  #nextId = 0;
  /** Workers that died in a row: at DEATHS_TO_STOP, the pool stops starting them. */
  #deaths = 0;
  #onFallback: ((path: string, why: string) => void) | undefined;

  /**
   * @param threads workers at most (0: none, every NAR streams)
   * @param budget the run's memory budget: each worker's buffer is set aside from it once, and a
   *   budget with room for fewer gets fewer workers, or none
   * @param onFallback hears each path sent back to the streaming path, and why
   * @param entry the worker's module (tests give one that fails)
   */
  constructor(
    threads: number,
    readonly maxNarBytes: number = WORKER_NAR_BYTES,
    budget?: MemoryBudget,
    onFallback?: (path: string, why: string) => void,
    private readonly entry: URL = ENTRY,
  ) {
    if (budget !== undefined && threads > 0)
      threads = Math.floor(budget.reserve(threads * maxNarBytes, maxNarBytes) / maxNarBytes);
    this.threads = threads;
    this.#onFallback = onFallback;
  }

  /** Whether a NAR of this size and codec goes to a worker. */
  takes(narSize: number, compression: Compression, minNarBytes: number): boolean {
    return (
      this.#deaths < DEATHS_TO_STOP &&
      this.threads > 0 &&
      compression !== 'xz' &&
      narSize > minNarBytes &&
      narSize <= this.maxNarBytes
    );
  }

  /**
   * The stored form of the path's NAR, or undefined when the streaming path should take it (the
   * worker met something unusual, or the workers were closed meanwhile).
   */
  run(
    path: string,
    narSize: number,
    compression: Exclude<Compression, 'xz'>,
    level: number,
  ): Promise<WorkerNar | undefined> {
    if (this.#deaths >= DEATHS_TO_STOP || this.threads === 0) return Promise.resolve(undefined);
    const job: NarJob = { id: ++this.#nextId, path, narSize, compression, level };
    return new Promise((resolve) => {
      this.#queue.push({ job, resolve });
      this.#dispatch();
    });
  }

  /** Ends every worker (their memory goes back); queued and running jobs come back undefined. */
  close(): void {
    for (const waiting of this.#queue.splice(0)) waiting.resolve(undefined);
    for (const slot of this.#slots.splice(0)) {
      slot.busy?.resolve(undefined);
      slot.busy = undefined;
      void slot.worker.terminate();
    }
  }

  /** Workers alive now (for tests). */
  get alive(): number {
    return this.#slots.length;
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const slot = this.#slots.find((s) => s.busy === undefined) ?? this.#startWorker();
      if (slot === undefined) return;
      const waiting = this.#queue.shift()!;
      slot.busy = waiting;
      slot.worker.ref();
      slot.worker.postMessage(waiting.job);
    }
  }

  #startWorker(): Slot | undefined {
    if (this.#slots.length >= this.threads || this.#deaths >= DEATHS_TO_STOP) return undefined;
    const workerData: NarWorkerData = { maxNarBytes: this.maxNarBytes };
    const worker = new Worker(this.entry, { execArgv: EXEC_ARGV, workerData });
    const slot: Slot = { worker, busy: undefined };
    worker.on('message', (answer: NarWorkerAnswer) => {
      const waiting = slot.busy;
      if (waiting === undefined || waiting.job.id !== answer.id) return;
      slot.busy = undefined;
      this.#deaths = 0;
      worker.unref();
      if ('fallback' in answer) {
        this.#onFallback?.(waiting.job.path, answer.fallback);
        waiting.resolve(undefined);
      } else {
        const { file } = answer;
        let lent = true;
        waiting.resolve({
          narHash: Buffer.from(answer.narHash.buffer, answer.narHash.byteOffset, answer.narHash.length),
          file: Buffer.from(file, 0, answer.fileLength),
          fileHash: Buffer.from(answer.fileHash.buffer, answer.fileHash.byteOffset, answer.fileHash.length),
          giveBack: () => {
            // Once, and only to a worker still alive: a closed one's memory is the collector's.
            if (!lent || !this.#slots.includes(slot)) return;
            lent = false;
            worker.postMessage({ giveBack: file }, [file]);
          },
        });
      }
      this.#dispatch();
    });
    // A worker that fails to start or dies: its job streams instead, and the next job starts a new
    // worker in its place.
    const gone = (why: string) => {
      const i = this.#slots.indexOf(slot);
      if (i < 0) return;
      this.#slots.splice(i, 1);
      if (++this.#deaths >= DEATHS_TO_STOP) for (const w of this.#queue.splice(0)) w.resolve(undefined);
      const waiting = slot.busy;
      slot.busy = undefined;
      if (waiting !== undefined) {
        this.#onFallback?.(waiting.job.path, why);
        waiting.resolve(undefined);
      }
      this.#dispatch();
    };
    worker.on('error', (err: Error) => gone(`worker failed: ${err.message}`));
    worker.on('exit', (code) => gone(`worker exited with code ${code}`));
    this.#slots.push(slot);
    return slot;
  }
}
