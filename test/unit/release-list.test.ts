import { test } from 'node:test';
import assert from 'node:assert/strict';
import { releaseAll, type Release } from '../../src/release-list.js';

test('releases newest first, goes on past a failure, reports it, and empties the list', async () => {
  const order: string[] = [];
  const errors: unknown[] = [];
  const releases: Release[] = [
    () => void order.push('store'),
    () => {
      order.push('cache');
      throw new Error('close failed');
    },
    () => Promise.resolve(void order.push('queue')),
  ];
  await releaseAll(releases, (err) => errors.push(err));
  assert.deepEqual(order, ['queue', 'cache', 'store']);
  assert.match(String(errors[0]), /close failed/);
  assert.equal(releases.length, 0, 'a second call releases nothing twice');
});
