// The uploader's semaphore: counted slots, and weighted ones for the body-memory budget.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { Semaphore } from '../../../src/upload/semaphore.js';

describe('Semaphore with weights', () => {
  test('a light request goes past a heavy one that does not fit; waiters are served in order', async () => {
    const slots = new Semaphore(10);
    await slots.acquire(6);
    const order: string[] = [];
    void slots.acquire(8).then(() => order.push('heavy'));
    void slots.acquire(3).then(() => order.push('light'));
    void slots.acquire(2).then(() => order.push('second light'));
    await tick();
    assert.deepEqual(order, ['light'], 'the heavy one waits for 8 of 10 units; 3 fit at once');
    slots.release(6);
    await tick();
    assert.deepEqual(order, ['light', 'second light'], '7 free: the heavy one still waits, 2 fit');
    slots.release(3);
    await tick();
    assert.deepEqual(order, ['light', 'second light', 'heavy'], '8 free: now the heavy one');
  });

  test('with unit requests, first come first served', async () => {
    const slots = new Semaphore(1);
    await slots.acquire();
    const order: number[] = [];
    for (const i of [1, 2, 3]) void slots.acquire().then(() => order.push(i));
    for (let i = 0; i < 3; i++) {
      slots.release();
      await tick();
    }
    assert.deepEqual(order, [1, 2, 3]);
  });

  test('a request made `ahead` is served before plain ones waiting, in order among its kind', async () => {
    const slots = new Semaphore(1);
    await slots.acquire();
    const order: string[] = [];
    void slots.acquire().then(() => order.push('first'));
    void slots.acquire().then(() => order.push('second'));
    void slots.acquire(1, true).then(() => order.push('ahead 1'));
    void slots.acquire(1, true).then(() => order.push('ahead 2'));
    for (let i = 0; i < 4; i++) {
      slots.release();
      await tick();
    }
    assert.deepEqual(order, ['ahead 1', 'ahead 2', 'first', 'second']);
  });

  test('a request larger than the whole waits for all of it, then goes alone', async () => {
    const slots = new Semaphore(4);
    await slots.acquire(1);
    let got = false;
    void slots.acquire(100).then(() => (got = true));
    await tick();
    assert.equal(got, false);
    slots.release(1);
    await tick();
    assert.equal(got, true);
    let next = false;
    void slots.acquire(1).then(() => (next = true));
    await tick();
    assert.equal(next, false, 'the oversized holder has every unit');
    slots.release(100);
    await tick();
    assert.equal(next, true);
  });

  test('use() gives its units back whether its work succeeds or fails', async () => {
    const slots = new Semaphore(5);
    assert.equal(await slots.use(() => Promise.resolve('done'), 3), 'done');
    await assert.rejects(
      slots.use(() => Promise.reject(new Error('boom')), 3),
      /boom/,
    );
    await slots.acquire(5); // would wait forever if use() had leaked units
    let extra = false;
    void slots.acquire(1).then(() => (extra = true));
    await tick();
    assert.equal(extra, false, 'no unit was given back twice');
  });

  test('tryAcquire takes free units at once and never waits', () => {
    const slots = new Semaphore(3);
    assert.equal(slots.tryAcquire(2), true);
    assert.equal(slots.tryAcquire(2), false, 'one unit left');
    assert.equal(slots.tryAcquire(1), true);
    assert.equal(slots.tryAcquire(1), false);
    slots.release(1);
    assert.equal(slots.tryAcquire(1), true);
  });
});
