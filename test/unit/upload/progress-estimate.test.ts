import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressEstimate, RATIO_PRIOR_BYTES } from '../../../src/upload/progress-estimate.js';

const MiB = 1024 * 1024;
const A = '/nix/store/00000000000000000000000000000000-alpha';
const B = '/nix/store/11111111111111111111111111111111-beta';
const C = '/nix/store/22222222222222222222222222222222-gamma';

/** The byte figures alone. */
function bytes(e: ProgressEstimate) {
  const { storedBytes, totalBytes, exact } = e.figures();
  return { storedBytes, totalBytes, exact };
}

const small = (i: number) => `/nix/store/${String(i).padStart(32, '3')}-small-${i}`;

describe('ProgressEstimate', () => {
  test('before any NAR is stored the total is the NAR total (no compression assumed)', () => {
    const e = new ProgressEstimate();
    e.planned(2, 100 * MiB);
    assert.deepEqual(bytes(e), { storedBytes: 0, totalBytes: 100 * MiB, exact: false });
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
    const f = bytes(e);
    assert.equal(f.storedBytes, 10 * MiB);
    assert.equal(f.totalBytes, Math.round(10 * MiB + 60 * MiB * r));
    // The ratio holds after the commit too.
    e.committed(A, 40 * MiB, 10 * MiB);
    assert.equal(e.ratio(), r);
    assert.deepEqual(bytes(e), f);
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
    assert.deepEqual(bytes(e), { storedBytes: 7 * MiB, totalBytes: 7 * MiB, exact: true });
    e.committed(A, 10 * MiB, 3 * MiB);
    e.committed(B, 10 * MiB, 4 * MiB);
    assert.deepEqual(bytes(e), { storedBytes: 7 * MiB, totalBytes: 7 * MiB, exact: true });
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
    assert.deepEqual(bytes(e), { storedBytes: 0, totalBytes: 10 * MiB, exact: false });
  });

  test('never a total below what is stored, and events for unknown paths change nothing', () => {
    const e = new ProgressEstimate();
    e.planned(1, 1 * MiB);
    e.started(A, 1 * MiB);
    e.acknowledged(A, 2 * MiB); // more than the estimate: framing on an incompressible NAR
    assert.deepEqual(bytes(e), { storedBytes: 2 * MiB, totalBytes: 2 * MiB, exact: false });
    const before = bytes(e);
    e.read(C, 5);
    e.produced(C, 5);
    e.acknowledged(C, 5);
    e.narStored(C, 5);
    e.restarted(C);
    e.failed(C);
    assert.deepEqual(bytes(e), before);
  });

  test('each path weighs the bytes the link could carry during its requests', () => {
    const e = new ProgressEstimate();
    // One large NAR and 100 small ones, 4 upload slots.
    e.planned(101, 100 * MiB + 100 * 64 * 1024, 4);
    e.started(A, 100 * MiB, 0);
    for (let i = 0; i < 4; i++) {
      e.started(small(i), 64 * 1024, 1000);
      e.narStored(small(i), 64 * 1024, 1080); // 80 ms each
      e.committed(small(i), 64 * 1024, 64 * 1024);
    }
    // Two requests of 80 ms over 4 slots: 40 ms a path.
    assert.equal(e.perPathSeconds(), 0.04);
    // A small NAR that waited behind the large one's bytes teaches nothing: the quickest counts.
    e.started(small(9), 64 * 1024, 2000);
    e.narStored(small(9), 64 * 1024, 2900);
    e.committed(small(9), 64 * 1024, 64 * 1024);
    assert.equal(e.perPathSeconds(), 0.04);
    e.acknowledged(A, 50 * MiB);
    const rate = 10 * MiB; // 10 MiB/s at best: a path weighs 400 KiB
    const f = e.figures(rate);
    // Less each small NAR's own 64 KiB on the link (6.25 ms at 10 MiB/s), counted as bytes already.
    assert.equal(e.perPathSeconds(rate), (2 * (80 - 6.25)) / 4 / 1000);
    const weight = rate * e.perPathSeconds(rate);
    const expected = (f.storedBytes + 5 * weight) / (f.totalBytes + 101 * weight);
    assert.ok(Math.abs(f.fraction - expected) < 1e-9, `${f.fraction} = ${expected}`);
    // Half the bytes, but 96 paths and their requests still to go: well under half.
    assert.ok(f.fraction < 0.4, `${f.fraction}`);
    assert.ok(f.storedBytes / f.totalBytes > 0.45);
  });

  test('large NARs teach nothing about per-path cost; without it the share is the bytes', () => {
    const e = new ProgressEstimate();
    e.planned(1, 40 * MiB, 4);
    e.started(A, 40 * MiB, 0);
    e.acknowledged(A, 10 * MiB);
    e.narStored(A, 40 * MiB, 9000);
    assert.equal(e.perPathSeconds(), 0);
    const f = e.figures(10 * MiB);
    assert.equal(f.fraction, 1);
    e.committed(A, 40 * MiB, 40 * MiB);
    assert.equal(e.figures(10 * MiB).fraction, 1);
  });
});
