// Who streams a NAR when (src/upload/nar-turns.ts): upload slots and the body-memory budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { MemoryBudget } from '../../../src/memory-budget.js';
import { NarTurns } from '../../../src/upload/nar-turns.js';

/** A turn the test ends by hand: `started` in the order turns begin. */
function turnsOf(turns: NarTurns, started: string[]) {
  const ends = new Map<string, () => void>();
  const ask = (name: string, narSize: number) =>
    void turns.with(narSize, () => {
      started.push(name);
      return new Promise<void>((resolve) => ends.set(name, resolve));
    });
  const end = async (name: string) => {
    ends.get(name)!();
    await tick();
    await tick();
  };
  return { ask, end };
}

test('a NAR that waited for memory takes the next free slot, ahead of NARs that have not started', async () => {
  // Two slots, memory for one large body. `big2` gives its slot back while the memory is taken,
  // and the small NARs behind it go on; once `big1` is done, `big2` has the memory and must not
  // wait at the back of the queue for every small NAR (on the wide-area bench, five large NARs
  // most of the closure referred to ended last that way, and every narinfo waited for them).
  const store = { bufferedPerUpload: () => 100 };
  const turns = new NarTurns(2, store, { budget: new MemoryBudget(100), exempt: 1000 });
  const started: string[] = [];
  const { ask, end } = turnsOf(turns, started);
  ask('big1', 5000);
  ask('big2', 5000);
  for (const s of ['s1', 's2', 's3', 's4']) ask(s, 10);
  await tick();
  await tick();
  assert.deepEqual(started, ['big1', 's1'], 'big2 gave its slot to s1 while it waits for memory');
  await end('big1');
  assert.deepEqual(started, ['big1', 's1', 's2'], "big1's slot went to s2 before big2 had its memory");
  await end('s1');
  assert.deepEqual(started, ['big1', 's1', 's2', 'big2'], 'the next free slot goes to big2, not s3');
  await end('s2');
  await end('big2');
  assert.deepEqual(started, ['big1', 's1', 's2', 'big2', 's3', 's4']);
});
