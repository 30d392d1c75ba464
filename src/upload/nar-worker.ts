// A worker thread's side of upload/nar-workers.ts: one whole NAR at a time, synchronously, as
// bench/lib/sync-floor.ts does: the tree encoded into one reused buffer of exactly the size Nix
// registered, hashed, compressed in one zstd step on this thread's own reused context into a
// buffer lent to the main thread and given back, and the compressed file hashed. The main thread
// then only stores the file and writes the narinfo.
//
// Anything unusual (a NAR longer than registered, a file that changed, a vanished path, a node a
// NAR cannot hold) is answered with `fallback`, never with an error of its own: the main thread
// then takes the path through the streaming upload, which reports each of those as it always has.
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { encodeNarSync, type NarSlab } from '../format/nar-writer.js';
import { fsNarSyncSource } from '../store/nar-source-fs.js';
import { WholeZstd, wholeZstdBound } from './zstd-whole.js';
import type { NarJob, NarWorkerAnswer, NarWorkerData } from './nar-workers.js';

/** Thrown by the slab factory when the NAR outgrows the size Nix registered. */
class Outgrown extends Error {}

const source = fsNarSyncSource();
const maxNarBytes = (workerData as NarWorkerData).maxNarBytes;
/**
 * The NAR being made, and the compressed files' buffers: allocated once at their largest, since
 * memory a buffer never touches is never resident, and reused, so NAR after NAR allocates nothing.
 * A file's buffer goes to the main thread with the answer and comes back once the file is stored.
 */
const stage = Buffer.allocUnsafeSlow(maxNarBytes);
const spare: ArrayBuffer[] = [];
/** Buffers kept for reuse; more come back only while files are being stored side by side. */
const SPARE_KEPT = 4;
let zstd: WholeZstd | undefined;

function encode(path: string, narSize: number): Buffer {
  const whole = stage.subarray(0, narSize);
  let given = false;
  const slab = (): NarSlab => {
    if (given) throw new Outgrown('longer than registered');
    given = true;
    return { buffer: whole, lend: (start, end) => whole.subarray(start, end), seal: () => undefined };
  };
  const chunks = encodeNarSync(source, Buffer.from(path, 'utf8'), slab);
  // One slab of exactly narSize: a longer NAR stops at Outgrown, a shorter one ends early.
  const written = chunks.reduce((n, c) => n + c.length, 0);
  if (written !== narSize) throw new Outgrown('shorter than registered');
  return whole;
}

/** The compressed file, written into `out`: its length. */
function compress(nar: Buffer, job: NarJob, out: Buffer): number {
  if (job.compression === 'none') return nar.copy(out);
  if (zstd?.level !== job.level) {
    zstd?.close();
    zstd = new WholeZstd(job.level);
  }
  const n = zstd.compress(nar, out);
  if (n === undefined) throw new Error('compressed output over its bound');
  return n;
}

function run(job: NarJob): NarWorkerAnswer {
  try {
    if (job.narSize > maxNarBytes) throw new Outgrown('larger than this worker takes');
    const nar = encode(job.path, job.narSize);
    const narHash = createHash('sha256').update(nar).digest();
    const file = spare.pop() ?? new ArrayBuffer(wholeZstdBound(maxNarBytes));
    const fileLength = compress(nar, job, Buffer.from(file));
    const fileHash = createHash('sha256')
      .update(Buffer.from(file, 0, fileLength))
      .digest();
    return {
      id: job.id,
      narHash: new Uint8Array(narHash),
      file,
      fileLength,
      fileHash: new Uint8Array(fileHash),
    };
  } catch (err) {
    return { id: job.id, fallback: err instanceof Outgrown ? err.message : String(err) };
  }
}

parentPort?.on('message', (message: NarJob | { giveBack: ArrayBuffer }) => {
  if ('giveBack' in message) {
    if (spare.length < SPARE_KEPT) spare.push(message.giveBack);
    return;
  }
  const answer = run(message);
  parentPort?.postMessage(answer, 'file' in answer ? [answer.file] : []);
});
