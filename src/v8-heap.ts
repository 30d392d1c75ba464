// A full collection of V8's heap that also gives its unused pages back, for a daemon gone idle.
//
// Why: the uploads of a store scan grow V8's heap to 150-170 MB (measured with 10,000-100,000
// paths), most of it garbage by the time the queue is empty. An idle daemon allocates next to
// nothing, so no collection comes, and V8's memory reducer, which should shrink the heap of a quiet
// mutator, was seen to act after 9 s in one run and not within 45 s in another.
//
// How, without `--expose-gc` (a flag of the command that starts node, which loft does not own):
// node:v8's queryObjects first runs V8's CollectAllAvailableGarbage (the collection of a heap
// snapshot and of a low-memory notification: several rounds, then the free pages are released),
// then counts instances of a class on the heap. The class here has none, so the count is cheap.
// Measured: a 156 MB heap went to 6 MB in about 120 ms. queryObjects is marked experimental
// (Node >= 20.13 and 22) and warns once: the warning is kept out of the daemon's JSON log.
import { queryObjects, setFlagsFromString } from 'node:v8';

/** Never instantiated: queryObjects finds no instance of it, after the collection. */
class NoInstances {}

/** Runs the memory-reducing full collection; false where node:v8 has no queryObjects. */
export function collectV8Garbage(): boolean {
  if (typeof queryObjects !== 'function') return false;
  const emitWarning: unknown = Reflect.get(process, 'emitWarning');
  process.emitWarning = () => undefined;
  try {
    queryObjects(NoInstances, { format: 'count' });
    return true;
  } finally {
    Reflect.set(process, 'emitWarning', emitWarning);
  }
}

/**
 * Keeps V8's young generation at its starting size for the rest of the process.
 *
 * Why: V8 doubles the young generation's semi-spaces whenever many objects survive a scavenge, up
 * to a limit sized from the machine's memory (64 MiB semi-spaces here). Streams, the AWS SDK and
 * the uploader's per-path objects survive often enough that an upload to S3 grew the heap to 88-90
 * MB of which 25-50 MB were live, and since V8 starts marking the old generation early when the
 * young generation outgrows the old one's headroom, that growth also set off full collections.
 *
 * How: `--semi-space-growth-factor` is read each time V8 decides to grow the young generation (not
 * when the heap is set up, as `--max-semi-space-size` is, which is why that flag set here changes
 * nothing: docs/benchmarks.md), so a factor of 1 set before the first growth holds it at its
 * starting size (1-2 MiB). Measured on the bench closure: heap 89 -> 35 MB and peak RSS about 50 MB
 * lower to S3, 25 MB to a directory, with no more CPU (docs/architecture.md, "A young generation
 * that does not grow"). Call it first thing; later it only stops further growth.
 */
export function holdYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

/**
 * Lets V8's old generation grow to four times what a full collection leaves live before the next
 * one starts: the most V8 itself would choose for a heap allowed to grow as large as Node lets it
 * here.
 *
 * Why: V8 picks that factor, between 1.1 and that maximum, from how fast it collects against how
 * fast the program allocates. A one-shot upload allocates slowly next to what V8 collects per
 * second, so V8 chose 1.1: on the bench closure to a directory the old generation stayed at 9-12
 * MB under a limit of 16-21 MB, and with so little room V8 started incremental marking again right
 * after each collection (`Start (task)` in --trace-incremental-marking): 15-30 full collections per
 * run, their marking on V8's helper threads. With more room: 3-4, and 0.1-0.6 CPU-s less on the
 * bench closure to a directory (on a tmpfs; the disk's drift hides it on ext4) and 0.5-1.0 to S3,
 * peak RSS within 1-3 MB (docs/benchmarks.md, seventeenth round). A daemon draining a scan of
 * 100,000 paths allocates fast, and there V8 already picks 4: a factor of 3 gave it 435 full
 * collections instead of 321 and 8 % more CPU. At 4 no program grows its heap further than V8
 * would let one that allocates fast.
 *
 * How: `--heap-growing-percent` replaces V8's choice by 1 + percent / 100 and is read at the end of
 * every full collection, so setting it first thing is enough.
 */
export function growOldGenerationByFour(): void {
  setFlagsFromString('--heap-growing-percent=300');
}
