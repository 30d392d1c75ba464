// The idle daemon's collection of V8's heap (src/v8-heap.ts): garbage that no allocation would
// ever collect is collected, and the heap's pages go back (heapTotal shrinks), with no warning
// printed for the experimental API it goes through.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collectV8Garbage } from '../../src/v8-heap.js';

const MB = 1024 * 1024;

test('the heap shrinks after a burst of garbage, silently', async () => {
  let live: unknown[] = [];
  // About 100 MB of short-lived objects, some kept for a while: the heap grows to hold them.
  for (let i = 0; i < 200; i++) {
    live.push(Array.from({ length: 10_000 }, (_, j) => ({ j, s: `x${j}` })));
    if (live.length > 20) live.shift();
  }
  const grown = process.memoryUsage().heapTotal;
  live = [];
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  try {
    assert.equal(collectV8Garbage(), true);
    const after = process.memoryUsage().heapTotal;
    assert.ok(
      grown - after > 40 * MB,
      `heapTotal ${(grown / MB).toFixed(0)} -> ${(after / MB).toFixed(0)} MB`,
    );
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on a later tick
  } finally {
    process.off('warning', onWarning);
  }
  assert.equal(live.length, 0);
  assert.deepEqual(warnings, []);
});
