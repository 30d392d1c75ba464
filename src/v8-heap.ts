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
import { queryObjects } from 'node:v8';

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
