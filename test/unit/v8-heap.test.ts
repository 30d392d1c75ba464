// The idle daemon's collection of V8's heap (src/v8-heap.ts): garbage that no allocation would
// ever collect is collected, and the heap's pages go back (heapTotal shrinks), with no warning
// printed for the experimental API it goes through.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { collectV8Garbage } from '../../src/v8-heap.js';

const MB = 1024 * 1024;
const V8_HEAP_MODULE = fileURLToPath(new URL('../../src/v8-heap.ts', import.meta.url));

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

// A flag of V8 set at run time is process-wide, so each case runs in a child process of its own.
const CHURN = `
import { getHeapSpaceStatistics } from 'node:v8';
const mod = await import(process.env.V8_HEAP_MODULE);
if (process.env.HOLD === '1') mod.holdYoungGeneration();
const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
// Short-lived objects of which many survive a scavenge or two: what makes V8 grow the young generation.
const keep = [];
for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 200000) keep.splice(0, 1000); }
process.stdout.write(String(newSpace()));
`;

function newSpaceAfterChurn(hold: boolean): number {
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHURN], {
    encoding: 'utf8',
    env: { ...process.env, HOLD: hold ? '1' : '0', V8_HEAP_MODULE: V8_HEAP_MODULE },
  });
  assert.equal(run.status, 0, run.stderr);
  return Number(run.stdout);
}

test('holdYoungGeneration keeps the young generation at its starting size under churn', () => {
  const grown = newSpaceAfterChurn(false);
  assert.ok(grown >= 16 * MB, `without it the young generation grows (${(grown / MB).toFixed(1)} MiB)`);
  const held = newSpaceAfterChurn(true);
  assert.ok(held <= 4 * MB, `with it it stays small (${(held / MB).toFixed(1)} MiB)`);
});

// V8 prints the factor it sets the old generation's next limit with after each full collection.
const FULL_COLLECTION = `
const mod = await import(process.env.V8_HEAP_MODULE);
mod.holdYoungGeneration();
if (process.env.GROW === '1') mod.growOldGenerationByFour();
const live = [];
while (live.length < 4e5) live.push({ i: live.length, s: 'v' + live.length });
mod.collectV8Garbage();
process.stdout.write(String(live.length));
`;

/** The factor V8 reported last, at the end of the full collection (V8's lines keep their order). */
function lastFactor(grow: boolean): number | undefined {
  const run = spawnSync(
    process.execPath,
    ['--trace-gc-verbose', '--import', 'tsx', '--input-type=module', '-e', FULL_COLLECTION],
    { encoding: 'utf8', env: { ...process.env, GROW: grow ? '1' : '0', V8_HEAP_MODULE } },
  );
  assert.equal(run.status, 0, run.stderr);
  const factors = [...run.stdout.matchAll(/\[HeapController\] factor ([\d.]+)/g)].map((m) => Number(m[1]));
  return factors.at(-1);
}

test('growOldGenerationByFour sets the factor the old generation grows by after a full collection', () => {
  const own = lastFactor(false);
  assert.ok(own !== undefined && own !== 4, `V8's own factor ${own} (the test needs one other than 4)`);
  assert.equal(lastFactor(true), 4);
});
