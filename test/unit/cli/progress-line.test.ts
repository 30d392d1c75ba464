import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { progressLine, type ProgressSnapshot } from '../../../src/cli/progress-line.js';

const MiB = 1024 * 1024;
const base: ProgressSnapshot = {
  committed: 3,
  failed: 0,
  total: 40,
  storedBytes: 300 * MiB,
  totalBytes: 1200 * MiB,
  exact: true,
  bytesPerSec: 50 * MiB,
  inFlight: ['glibc-2.38-27', 'hello-2.12.1', 'python3-3.11.9-env', 'gcc-13.2.0-lib'],
  finished: false,
};

describe('progressLine', () => {
  test('at 160 columns: paths, percent, bytes, rate, ETA and every path in flight', () => {
    const line = progressLine(base, 160);
    assert.equal(
      line,
      '[3/40] 25% 300.0 MiB/1.2 GiB 50.0 MiB/s ETA 0:18 | glibc-2.38-27, hello-2.12.1, python3-3.11.9-env, gcc-13.2.0-lib',
    );
  });

  test('at 80 columns: the names that fit, then +N; never the last column', () => {
    const line = progressLine(base, 80);
    assert.equal(line, '[3/40] 25% 300.0 MiB/1.2 GiB 50.0 MiB/s ETA 0:18 | glibc-2.38-27 +3');
    assert.ok(line.length <= 79);
  });

  test('at 40 columns: the most important parts only', () => {
    const line = progressLine(base, 40);
    assert.equal(line, '[3/40] 25% 300.0 MiB/1.2 GiB 50.0 MiB/s');
    assert.ok(line.length <= 39);
  });

  test('at a very narrow width it is cut, never wrapped', () => {
    for (const columns of [1, 5, 12, 20]) {
      assert.ok(progressLine(base, columns).length <= Math.max(columns - 1, 10), `${columns} columns`);
    }
  });

  test('stops at 99% while paths are in flight, shows 100% only when all are committed', () => {
    const almost = { ...base, committed: 39, storedBytes: 1200 * MiB, inFlight: ['last'] };
    assert.match(progressLine(almost, 160), /^\[39\/40\] 99% /);
    const over = { ...almost, committed: 40, inFlight: [], finished: true };
    assert.match(progressLine(over, 160), /^\[40\/40\] 100% 1\.2 GiB\/1\.2 GiB 50\.0 MiB\/s$/);
  });

  test('a run that ended with failures does not claim 100%', () => {
    const ended = {
      ...base,
      committed: 39,
      failed: 1,
      storedBytes: 1190 * MiB,
      inFlight: [],
      finished: true,
    };
    assert.match(progressLine(ended, 160), /^\[39\/40\] 99% .* 1 failed$/);
  });

  test('ETA in hours, and unknown before the rate is known', () => {
    assert.match(progressLine({ ...base, bytesPerSec: 100_000 }, 160), /ETA 2:37:18/);
    assert.match(progressLine({ ...base, bytesPerSec: undefined }, 160), /ETA -- \|/);
  });

  test('marks the total with "~" while it is an estimate', () => {
    assert.match(progressLine({ ...base, exact: false }, 160), /^\[3\/40\] 25% 300\.0 MiB\/~1\.2 GiB /);
    assert.match(progressLine(base, 160), /^\[3\/40\] 25% 300\.0 MiB\/1\.2 GiB /);
  });
});
