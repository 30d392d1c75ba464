// The named policies of src/backoff.ts, as sequences of delays at the ceiling (random 1) and at
// the floor (random 0): the numbers the README and the retry comments promise.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attemptsExhausted, BACKOFF, backoffDelay, type Backoff } from '../../src/backoff.js';

const at = (policy: Backoff, r: number, retries: number[]) =>
  retries.map((n) => backoffDelay(policy, n, () => r));

test('request: 250 ms doubling to 20 s, full jitter (the floor is 0)', () => {
  assert.deepEqual(at(BACKOFF.request, 1, [1, 2, 3, 7, 8, 30]), [250, 500, 1000, 16_000, 20_000, 20_000]);
  assert.deepEqual(at(BACKOFF.request, 0, [1, 5]), [0, 0]);
});

test('path: 1 s then 4 s, shortened by at most half; 3 tries', () => {
  assert.deepEqual(at(BACKOFF.path, 1, [1, 2]), [1000, 4000]);
  assert.deepEqual(at(BACKOFF.path, 0, [1, 2]), [500, 2000]);
  assert.equal(attemptsExhausted(BACKOFF.path, 2), false);
  assert.equal(attemptsExhausted(BACKOFF.path, 3), true);
});

test('queue: 2 s doubling to 10 min, shortened by at most a quarter; parked after 12', () => {
  assert.deepEqual(at(BACKOFF.queue, 1, [1, 2, 9, 10, 12]), [2000, 4000, 512_000, 600_000, 600_000]);
  assert.deepEqual(at(BACKOFF.queue, 0, [1]), [1500]);
  assert.equal(attemptsExhausted(BACKOFF.queue, 12), true);
});

test('batch and storage wait never give up and wait at most a minute', () => {
  for (const policy of [BACKOFF.batch, BACKOFF.storageWait]) {
    assert.deepEqual(at(policy, 1, [1, 2, 6, 7, 1000]), [1000, 2000, 32_000, 60_000, 60_000]);
    assert.equal(attemptsExhausted(policy, 1e9), false);
  }
});

test('a random source outside [0, 1) is clamped, never a negative or over-long delay', () => {
  assert.equal(
    backoffDelay(BACKOFF.queue, 1, () => -3),
    1500,
  );
  assert.equal(
    backoffDelay(BACKOFF.queue, 1, () => 7),
    2000,
  );
});
