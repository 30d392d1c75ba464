// The compute pool's slot budget and the LOFT_COMPUTE_THREADS setting that sizes it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { setImmediate as tick } from 'node:timers/promises';
import { computeThreads } from '../../../src/cli/upload-deps.js';
import { ConfigError } from '../../../src/errors.js';
import { ComputePool, type FrameSlot } from '../../../src/upload/compute-pool.js';

void describe('ComputePool', () => {
  void test('hands out one slot per thread; a release passes the slot to the first waiter', async () => {
    const pool = new ComputePool(2, 1024);
    const a = await pool.acquire();
    const b = await pool.acquire();
    const third: { slot?: FrameSlot } = {};
    void pool.acquire().then((s) => (third.slot = s));
    await tick();
    // Read through a function: the slot arrives in a callback, which narrowing cannot see.
    const thirdSlot = (): FrameSlot | undefined => third.slot;
    assert.equal(thirdSlot(), undefined, 'a third frame waits while two are held');
    a.release();
    a.release(); // a second release must not free a second slot
    await tick();
    assert.equal(thirdSlot()?.buffer, a.buffer, 'the input buffer is reused, not reallocated');
    let fourth = false;
    void pool.acquire().then(() => (fourth = true));
    await tick();
    assert.equal(fourth, false, 'still two slots in all after a double release');
    b.release();
    await tick();
    assert.equal(fourth, true);
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
