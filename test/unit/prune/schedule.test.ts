import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePruneSchedule } from '../../../src/prune/schedule-syntax.js';
import { msUntilNextPrune, nextPruneAt } from '../../../src/prune/schedule.js';

const schedule = (text: string) => {
  const s = parsePruneSchedule(text);
  assert.ok(s, text);
  return s;
};

test('an interval runs one interval after the start, then after the previous run started', () => {
  const now = new Date(2026, 0, 10, 12, 0, 0);
  assert.equal(nextPruneAt(schedule('30m'), now).getTime(), now.getTime() + 30 * 60_000);
  const lastStart = new Date(now.getTime() - 10 * 60_000);
  assert.equal(nextPruneAt(schedule('30m'), now, lastStart).getTime(), lastStart.getTime() + 30 * 60_000);
  // A run that overran its slot: the next one starts now, not in the past.
  const longAgo = new Date(now.getTime() - 3 * 3_600_000);
  assert.equal(nextPruneAt(schedule('1h'), now, longAgo).getTime(), now.getTime());
  assert.equal(msUntilNextPrune(schedule('1d'), now), 86_400_000);
});

test('a daily time is the next local HH:MM strictly after now', () => {
  const before = new Date(2026, 0, 10, 2, 0, 0);
  assert.deepEqual(nextPruneAt(schedule('03:30'), before), new Date(2026, 0, 10, 3, 30, 0));
  const after = new Date(2026, 0, 10, 4, 0, 0);
  assert.deepEqual(nextPruneAt(schedule('03:30'), after), new Date(2026, 0, 11, 3, 30, 0));
  const exactly = new Date(2026, 0, 10, 0, 0, 0);
  assert.deepEqual(nextPruneAt(schedule('00:00'), exactly), new Date(2026, 0, 11, 0, 0, 0));
  // Month and year ends roll over.
  assert.deepEqual(
    nextPruneAt(schedule('00:00'), new Date(2026, 11, 31, 23, 59)),
    new Date(2027, 0, 1, 0, 0),
  );
});
