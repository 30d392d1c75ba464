// A bench's ratio printed beside its bar must show which side of the bar it is on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { beside } from '../../../bench/lib/timed-command.js';

test('two decimals, or three when two would print the bar itself', () => {
  assert.equal(beside(0.6, 0.7), '0.60');
  assert.equal(beside(1.597, 1.6), '1.597');
  assert.equal(beside(0.704, 0.7), '0.704');
  assert.equal(beside(1.1049, 1.1), '1.105');
  assert.equal(beside(1.6, 1.6), '1.60');
});
