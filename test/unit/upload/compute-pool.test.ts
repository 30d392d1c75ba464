// The compute pool's slots and compression turns, and the LOFT_COMPUTE_THREADS setting that sizes
// them.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { setImmediate as tick } from 'node:timers/promises';
import { computeThreads } from '../../../src/cli/upload-deps.js';
import { ConfigError } from '../../../src/errors.js';
import { ComputePool, FILL_AHEAD, type FrameSlot } from '../../../src/upload/compute-pool.js';
import { MemoryBudget } from '../../../src/memory-budget.js';

void describe('ComputePool', () => {
  void test('hands out one slot per thread and one ahead; a release passes the slot to the first waiter', async () => {
    const pool = new ComputePool(2, 1024);
    assert.equal(pool.threads, 2);
    assert.equal(pool.frames, 2 + FILL_AHEAD);
    const held = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    const next: { slot?: FrameSlot } = {};
    void pool.acquire().then((s) => (next.slot = s));
    await tick();
    // Read through a function: the slot arrives in a callback, which narrowing cannot see.
    const nextSlot = (): FrameSlot | undefined => next.slot;
    assert.equal(nextSlot(), undefined, 'a fourth frame waits while three are held');
    const [a, b] = held as [FrameSlot, FrameSlot, FrameSlot];
    a.release();
    a.release(); // a second release must not free a second slot
    await tick();
    assert.equal(nextSlot()?.buffer, a.buffer, 'the input buffer is reused, not reallocated');
    let another = false;
    void pool.acquire().then(() => (another = true));
    await tick();
    assert.equal(another, false, 'still three slots in all after a double release');
    b.release();
    await tick();
    assert.equal(another, true);
  });

  void test('compression turns: one per thread, whatever the slots; ending a turn twice frees one', async () => {
    const pool = new ComputePool(2, 1024);
    const first = await pool.compressTurn();
    await pool.compressTurn();
    let third = false;
    void pool.compressTurn().then(() => (third = true));
    await tick();
    assert.equal(third, false, 'a third full frame waits while two compress');
    first();
    first();
    await tick();
    assert.equal(third, true);
    let fourth = false;
    void pool.compressTurn().then(() => (fourth = true));
    await tick();
    assert.equal(fourth, false, 'a double end gave back one turn, not two');
  });

  void test('a budget short of the frame ahead loses it first, then threads', () => {
    const frame = 1024;
    const exact = new MemoryBudget(3 * frame);
    const full = new ComputePool(2, frame, exact);
    assert.deepEqual([full.threads, full.frames, exact.free], [2, 3, 0]);
    const short = new ComputePool(2, frame, new MemoryBudget(2 * frame));
    assert.deepEqual([short.threads, short.frames], [2, 2]);
    const shorter = new ComputePool(2, frame, new MemoryBudget(frame));
    assert.deepEqual([shorter.threads, shorter.frames], [1, 1]);
  });

  void test('a thread count outside 1-256 is a ConfigError', () => {
    for (const n of [0, -1, 1.5, 257]) assert.throws(() => new ComputePool(n), ConfigError);
  });
});

void describe('LOFT_COMPUTE_THREADS', () => {
  void test('unset or empty: one thread per available core; a number: that many', () => {
    assert.equal(computeThreads({}), availableParallelism());
    assert.equal(computeThreads({ LOFT_COMPUTE_THREADS: ' ' }), availableParallelism());
    assert.equal(computeThreads({ LOFT_COMPUTE_THREADS: '3' }), 3);
  });

  void test('anything else is a ConfigError naming the variable and the fix', () => {
    for (const raw of ['abc', '0', '1.5', '300', '-2']) {
      assert.throws(
        () => computeThreads({ LOFT_COMPUTE_THREADS: raw }),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message.includes('LOFT_COMPUTE_THREADS') &&
          err.message.includes('unset it'),
      );
    }
  });
});
