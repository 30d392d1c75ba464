// What the daemon's prune timer runs: the one prune of `loft --prune`, deleting at once without a
// grace period and marking first with one, and its outcome kept for /metrics. Over the in-memory object store
// and a real SQLite file.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/log.js';
import { DaemonMetrics } from '../../../src/daemon/metrics.js';
import { pruneScheduleOf, scheduledPrune } from '../../../src/daemon/scheduled-prune.js';
import { parsePruneSchedule } from '../../../src/prune/schedule-syntax.js';
import { memoryBucket } from '../../helpers/memory-bucket.js';
import { h, narinfoText } from '../prune/policy-fixtures.js';

const DAY = 86_400_000;

/** A bucket with one path uploaded 40 days ago: past a 30-day retention. */
async function setup() {
  const { store, cache, db } = await memoryBucket('scheduled-prune');
  const narinfo = narinfoText(1);
  await store.putBytes(`nar/${h(1)}.nar.zst`, 'x'.repeat(500), { contentType: 'x' });
  await store.putBytes(`${h(1)}.narinfo`, narinfo, { contentType: 'x' });
  for (const o of store.objects.values()) o.lastModified = new Date(Date.now() - 40 * DAY);
  const metrics = new DaemonMetrics();
  const prune = { store, cache, db, storeDir: '/nix/store', logger: silentLogger() };
  const deps = { prune, metrics, host: 'test-host', logger: silentLogger() };
  return { store, metrics, deps, close: () => (db.close(), cache.close()) };
}

const settings = (graceHours: number) => ({
  retentionDays: 30,
  targetPercentage: 80,
  orphanGraceHours: 24,
  graceHours,
});
const schedule = parsePruneSchedule('1d')!;

describe('scheduledPrune', () => {
  test('without a grace period: deletes the expired path at once and records it', async () => {
    const { store, metrics, deps, close } = await setup();
    await scheduledPrune(schedule, settings(0), deps).run();
    close();
    assert.equal(store.objects.has(`${h(1)}.narinfo`), false, 'the expired narinfo is deleted');
    assert.deepEqual(
      [...store.objects.keys()].filter((k) => k.startsWith('.loft/prune/') || k === '.loft/grace.json'),
      [],
      'grace 0 writes no marks and records no grace',
    );
    assert.equal(metrics.lastPrune?.ok, true);
    assert.equal(metrics.lastPrune?.deletedPaths, 1);
  });

  test('with a grace period: marks first (the sweep shared by hosts) and deletes nothing yet', async () => {
    const { store, metrics, deps, close } = await setup();
    await scheduledPrune(schedule, settings(1), deps).run();
    close();
    assert.equal(store.objects.has(`${h(1)}.narinfo`), true, 'a marked path waits for the grace period');
    assert.ok(
      [...store.objects.keys()].some((k) => k.startsWith('.loft/')),
      'the sweep wrote its state under .loft/',
    );
    assert.equal(metrics.lastPrune?.ok, true);
    assert.equal(metrics.lastPrune?.deletedPaths, 0);
  });

  test('a failed prune is recorded as failed and its error reaches the prune loop', async () => {
    const { store, metrics, deps, close } = await setup();
    store.list = () => ({
      [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('bucket unreachable')) }),
    });
    await assert.rejects(scheduledPrune(schedule, settings(0), deps).run(), /bucket unreachable/);
    close();
    assert.deepEqual(
      { ok: metrics.lastPrune?.ok, deleted: metrics.lastPrune?.deletedPaths },
      { ok: false, deleted: 0 },
    );
  });
});

describe('pruneScheduleOf', () => {
  test('a schedule only when pruning is enabled and scheduled', () => {
    assert.equal(pruneScheduleOf({ enabled: false, schedule: '1d' }), undefined);
    assert.equal(pruneScheduleOf({ enabled: true }), undefined);
    assert.deepEqual(pruneScheduleOf({ enabled: true, schedule: '1d' }), schedule);
  });
});
