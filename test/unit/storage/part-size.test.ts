import { test } from 'node:test';
import assert from 'node:assert/strict';
import { partSizeFor } from '../../../src/storage/body-source.js';

const MiB = 1024 * 1024;

test('the configured part size serves ordinary NARs', () => {
  assert.equal(partSizeFor(8 * MiB, undefined), 8 * MiB);
  assert.equal(partSizeFor(8 * MiB, 2 * 1024 * MiB), 8 * MiB);
});

test('a NAR that would need more than 9,000 parts gets larger whole-MiB parts', () => {
  const hint = 100 * 1024 * 1024 * MiB; // 100 TiB would be over S3's limit anyway; 100 GiB:
  const size = partSizeFor(8 * MiB, hint / 1024);
  assert.ok(size > 8 * MiB);
  assert.equal(size % MiB, 0);
  assert.ok(Math.ceil(hint / 1024 / size) <= 9000);
});
