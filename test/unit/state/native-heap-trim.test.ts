// glibc's malloc_trim reached through SQLite's extension loader (src/state/native-heap-trim.ts):
// C heap pages that were freed between live allocations go back to the system, which this
// process's VmRSS shows; without glibc the trimmer says it is unavailable and does nothing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { nativeHeapTrimmer, trimNativeHeap } from '../../../src/state/native-heap-trim.js';

const MB = 1024 * 1024;

function vmRss(): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
}

function hasGlibc(): boolean {
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  return header?.glibcVersionRuntime !== undefined;
}

test('freed C heap pages between live ones go back to the system', async (t) => {
  if (!hasGlibc()) return t.skip('needs glibc (malloc_trim)');
  // A full collection on demand, so the dropped buffers' memory is free()d before the trim.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // 120 MB in 8 KB buffers (below glibc's mmap threshold: they come from the arenas), then every
  // one but each 50th dropped: the free space is scattered between live chunks, where free()
  // cannot give it back by itself.
  const all = Array.from({ length: 15_000 }, () => Buffer.allocUnsafeSlow(8000).fill(1));
  const kept = all.filter((_, i) => i % 50 === 0);
  all.length = 0;
  gc();
  // V8 frees dead Buffers' backing stores from a background thread after the collection.
  await sleep(300);
  gc();
  await sleep(100);
  const before = vmRss();
  assert.equal(trimNativeHeap(), 'released');
  const released = before - vmRss();
  t.diagnostic(`VmRSS ${(before / MB).toFixed(0)} MB -> ${((before - released) / MB).toFixed(0)} MB`);
  assert.ok(released > 40 * MB, `only ${(released / MB).toFixed(1)} MB released`);
  assert.equal(kept.length, 300);
});

test('a library without malloc_trim turns the trimmer off, quietly', () => {
  const trim = nativeHeapTrimmer('libloft-no-such-library.so');
  assert.equal(trim(), 'unavailable');
  assert.equal(trim(), 'unavailable');
});
