import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateWindow } from '../../../src/cli/rate-window.js';

test('the rate follows the last seconds, not the whole run', () => {
  const w = new RateWindow(5000);
  // 10 s at 10 MB/s, then 10 s at 1 MB/s.
  let bytes = 0;
  for (let t = 0; t <= 10_000; t += 200) w.add(t, (bytes = t * 10_000));
  assert.equal(Math.round(w.rate()!), 10_000_000);
  for (let t = 10_200; t <= 20_000; t += 200) w.add(t, (bytes += 200_000));
  assert.equal(Math.round(w.rate()!), 1_000_000);
});

test('unknown until samples span half a second; never negative', () => {
  const w = new RateWindow(5000);
  w.add(0, 100);
  w.add(300, 200);
  assert.equal(w.rate(), undefined);
  w.add(1000, 50); // a retry starts its NAR again
  assert.equal(w.rate(), 0);
});
