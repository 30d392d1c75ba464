import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressEstimate, RATIO_PRIOR_BYTES } from '../../../src/upload/progress-estimate.js';

const MiB = 1024 * 1024;
const A = '/nix/store/00000000000000000000000000000000-alpha';
const B = '/nix/store/11111111111111111111111111111111-beta';
const C = '/nix/store/22222222222222222222222222222222-gamma';

describe('ProgressEstimate', () => {
  test('before any NAR is stored the total is the NAR total (no compression assumed)', () => {
    const e = new ProgressEstimate();
    e.planned(2, 100 * MiB);
    assert.deepEqual(e.figures(), { storedBytes: 0, totalBytes: 100 * MiB, exact: false });
  });

  test('counts only what the target acknowledged, not what was read or compressed', () => {
    const e = new ProgressEstimate();
    e.planned(1, 40 * MiB);
    e.started(A, 40 * MiB);
    e.read(A, 40 * MiB);
    e.produced(A, 15 * MiB);
    assert.equal(e.figures().storedBytes, 0, 'read and compressed, nothing acknowledged');
    e.acknowledged(A, 5 * MiB);
    e.acknowledged(A, 5 * MiB);
    assert.equal(e.figures().storedBytes, 10 * MiB);
  });

  test('learns the compression ratio from stored NARs and applies it to the paths not started', () => {
    const e = new ProgressEstimate();
    e.planned(2, 100 * MiB);
    e.started(A, 40 * MiB);
    e.narStored(A, 10 * MiB);
    const r = (10 * MiB + RATIO_PRIOR_BYTES) / (40 * MiB + RATIO_PRIOR_BYTES);
    assert.equal(e.ratio(), r);
    const f = e.figures();
    assert.equal(f.storedBytes, 10 * MiB);
    assert.equal(f.totalBytes, Math.round(10 * MiB + 60 * MiB * r));
    // The ratio holds after the commit too.
    e.committed(A, 40 * MiB, 10 * MiB);
    assert.equal(e.ratio(), r);
    assert.deepEqual(e.figures(), f);
  });

  test('a path in flight counts at least what it has produced: a random NAR among compressible ones', () => {
    const e = new ProgressEstimate();
    e.planned(2, 50 * MiB);
    e.started(A, 40 * MiB); // text, 4:1
    e.narStored(A, 10 * MiB);
    e.started(B, 10 * MiB); // random
    e.read(B, 8 * MiB);
    e.produced(B, 8 * MiB);
    const r = e.ratio();
    assert.ok(r < 0.4);
    // 8 MiB produced and 2 MiB still to read: not 10 MiB * r.
    assert.equal(e.figures().totalBytes, Math.round(10 * MiB + 8 * MiB + 2 * MiB * r));
  });

  test('a compressor holding its first frame does not shrink the path to nothing', () => {
    const e = new ProgressEstimate();
    e.planned(1, 16 * MiB);
    e.started(A, 16 * MiB);
    e.read(A, 16 * MiB); // all read, nothing produced yet
    assert.equal(e.figures().totalBytes, 16 * MiB);
  });

  test('the total is exact once every path has its compressed size', () => {
    const e = new ProgressEstimate();
    e.planned(2, 20 * MiB);
    e.started(A, 10 * MiB);
    e.started(B, 10 * MiB);
    e.narStored(A, 3 * MiB);
    assert.equal(e.figures().exact, false);
    e.narStored(B, 4 * MiB);
    assert.deepEqual(e.figures(), { storedBytes: 7 * MiB, totalBytes: 7 * MiB, exact: true });
    e.committed(A, 10 * MiB, 3 * MiB);
    e.committed(B, 10 * MiB, 4 * MiB);
    assert.deepEqual(e.figures(), { storedBytes: 7 * MiB, totalBytes: 7 * MiB, exact: true });
  });

  test('a retry forgets what the failed attempt stored; a failed path leaves the count and the total', () => {
    const e = new ProgressEstimate();
    e.planned(2, 20 * MiB);
    e.started(A, 10 * MiB);
    e.started(B, 10 * MiB);
    e.read(A, 10 * MiB);
    e.produced(A, 10 * MiB);
    e.acknowledged(A, 5 * MiB);
    e.restarted(A);
    assert.equal(e.figures().storedBytes, 0);
    e.acknowledged(B, 5 * MiB);
    e.failed(B);
    assert.deepEqual(e.figures(), { storedBytes: 0, totalBytes: 10 * MiB, exact: false });
  });

  test('never a total below what is stored, and events for unknown paths change nothing', () => {
    const e = new ProgressEstimate();
    e.planned(1, 1 * MiB);
    e.started(A, 1 * MiB);
    e.acknowledged(A, 2 * MiB); // more than the estimate: framing on an incompressible NAR
    assert.deepEqual(e.figures(), { storedBytes: 2 * MiB, totalBytes: 2 * MiB, exact: false });
    const before = e.figures();
    e.read(C, 5);
    e.produced(C, 5);
    e.acknowledged(C, 5);
    e.narStored(C, 5);
    e.restarted(C);
    e.failed(C);
    assert.deepEqual(e.figures(), before);
  });
});
