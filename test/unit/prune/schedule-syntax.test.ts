import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePruneSchedule } from '../../../src/prune/schedule-syntax.js';

test('intervals <n>s|m|h|d', () => {
  assert.deepEqual(parsePruneSchedule('24h'), { kind: 'interval', ms: 24 * 3_600_000 });
  assert.deepEqual(parsePruneSchedule('1s'), { kind: 'interval', ms: 1000 });
  assert.deepEqual(parsePruneSchedule('90m'), { kind: 'interval', ms: 90 * 60_000 });
  assert.deepEqual(parsePruneSchedule('1d'), { kind: 'interval', ms: 86_400_000 });
  assert.deepEqual(parsePruneSchedule('365d'), { kind: 'interval', ms: 365 * 86_400_000 });
});

test('daily times HH:MM, including the original README example "00:00"', () => {
  assert.deepEqual(parsePruneSchedule('00:00'), { kind: 'daily', hour: 0, minute: 0 });
  assert.deepEqual(parsePruneSchedule('23:59'), { kind: 'daily', hour: 23, minute: 59 });
  assert.deepEqual(parsePruneSchedule('03:07'), { kind: 'daily', hour: 3, minute: 7 });
});

test('everything else is rejected', () => {
  for (const bad of [
    '',
    '0s',
    '0h',
    '366d',
    '24',
    'h',
    '1w',
    '1.5h',
    '-1h',
    ' 24h',
    '24h ',
    '24H',
    '24:00',
    '12:60',
    '3:00',
    '03:0',
    '03:00:00',
    'daily',
    '@daily',
    '0 0 * * *',
  ]) {
    assert.equal(parsePruneSchedule(bad), undefined, JSON.stringify(bad));
  }
});
