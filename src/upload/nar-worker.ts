// A worker thread's side of upload/nar-workers.ts: one whole NAR at a time, synchronously, as
// bench/lib/sync-floor.ts does: the tree encoded into one reused buffer of exactly the size Nix
// registered, hashed, compressed in one zstd step on this thread's own reused context, and the
// compressed file hashed. The main thread then only stores the file and writes the narinfo.
//
// Anything unusual (a NAR longer than registered, a file that changed, a vanished path, a node a
// NAR cannot hold) is answered with `fallback`, never with an error of its own: the main thread
// then takes the path through the streaming upload, which reports each of those as it always has.
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { encodeNarSync, type NarSlab } from '../format/nar-writer.js';
import { fsNarSyncSource } from '../store/nar-source-fs.js';
import { WholeZstd } from './zstd-whole.js';
import type { NarJob, NarWorkerAnswer } from './nar-workers.js';

/** Thrown by the slab factory when the NAR outgrows the size Nix registered. */
class Outgrown extends Error {}

const source = fsNarSyncSource();
let stage = Buffer.allocUnsafeSlow(0);
let zstd: WholeZstd | undefined;

function encode(path: string, narSize: number): Buffer {
  if (stage.length < narSize) stage = Buffer.allocUnsafeSlow(narSize);
  const whole = stage.subarray(0, narSize);
  let given = false;
  const slab = (): NarSlab => {
    if (given) throw new Outgrown();
    given = true;
    return { buffer: whole, lend: (start, end) => whole.subarray(start, end), seal: () => undefined };
  };
  const chunks = encodeNarSync(source, Buffer.from(path, 'utf8'), slab);
  // One slab of exactly narSize: a shorter NAR ends early, a longer one stops at Outgrown.
  const written = chunks.reduce((n, c) => n + c.length, 0);
  if (written !== narSize) throw new Outgrown();
  return whole;
}

function compress(nar: Buffer, job: NarJob): Buffer {
  if (job.compression === 'none') return nar;
  if (zstd?.level !== job.level) {
    zstd?.close();
    zstd = new WholeZstd(job.level);
  }
  return zstd.compress(nar);
}

function run(job: NarJob): NarWorkerAnswer {
  try {
    const nar = encode(job.path, job.narSize);
    const narHash = createHash('sha256').update(nar).digest();
    const view = compress(nar, job);
    // Copied out of this thread's reused buffers into memory the main thread takes over.
    const file = new Uint8Array(view.length);
    file.set(view);
    const fileHash = createHash('sha256').update(file).digest();
    return { id: job.id, narHash: new Uint8Array(narHash), file, fileHash: new Uint8Array(fileHash) };
  } catch (err) {
    return { id: job.id, fallback: err instanceof Outgrown ? 'longer than registered' : String(err) };
  }
}

parentPort?.on('message', (job: NarJob) => {
  const answer = run(job);
  parentPort?.postMessage(answer, 'file' in answer ? [answer.file.buffer as ArrayBuffer] : []);
});
