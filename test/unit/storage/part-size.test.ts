import { test } from 'node:test';
import assert from 'node:assert/strict';
import { partSizeFor, s3BufferedPerUpload } from '../../../src/storage/body-source.js';
import { LocalObjectStore } from '../../../src/storage/local-object-store.js';

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

test('an S3 upload buffers the part read ahead, the part being filled and those in flight', () => {
  // What the uploader weighs a NAR by (ObjectStore.bufferedPerUpload): 4 parts with the default
  // queue of 2, never more than the body, and larger parts for a huge body.
  assert.equal(s3BufferedPerUpload(8 * MiB, undefined, 1024 * MiB), 4 * 8 * MiB);
  assert.equal(s3BufferedPerUpload(8 * MiB, 4, 1024 * MiB), 6 * 8 * MiB);
  assert.equal(s3BufferedPerUpload(8 * MiB, undefined, 3 * MiB), 3 * MiB);
  const huge = 200 * 1024 * MiB;
  assert.equal(s3BufferedPerUpload(8 * MiB, undefined, huge), 4 * partSizeFor(8 * MiB, huge));
  assert.equal(new LocalObjectStore('/nonexistent').bufferedPerUpload(), 0, 'a directory streams');
});
