// The upload queue over a real temporary SQLite file, with a clock the tests move.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PresenceCache, readPresenceStatus } from '../../../src/state/presence.js';
import { UploadQueue } from '../../../src/state/queue.js';
import { BACKOFF, backoffDelay, type Backoff } from '../../../src/backoff.js';

const P = (n: number) => `/nix/store/${String(n).padStart(32, '0').replace(/0/g, 'a')}-p${n}`;
const policy: Backoff = { ...BACKOFF.queue, baseMs: 1000, maxMs: 8000, maxAttempts: 5 };

void describe('backoffDelay', () => {
  void test('doubles from the base up to the cap; jitter only shortens', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 9].map((a) => backoffDelay(policy, a, () => 1)),
      [1000, 2000, 4000, 8000, 8000, 8000],
    );
    assert.equal(
      backoffDelay(policy, 3, () => 0),
      3000,
    );
  });
});

void describe('UploadQueue', () => {
  let dir: string;
  let clock = 1_000_000;
  const open = (name: string) =>
    UploadQueue.open(join(dir, name), { policy, now: () => clock, random: () => 1 });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loft-queue-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  void test('enqueue is idempotent; due items come oldest first; done items leave', () => {
    const q = open('a.db');
    assert.equal(q.enqueue([P(1), P(2), P(1)]), 2);
    clock += 10;
    assert.equal(q.enqueue([P(2), P(3)]), 1);
    assert.deepEqual(q.counts(), { pending: 3, parked: 0 });
    assert.deepEqual(
      q.takeDue(10).map((i) => i.path),
      [P(1), P(2), P(3)],
    );
    assert.deepEqual(
      q.takeDue(2).map((i) => i.path),
      [P(1), P(2)],
    );
    q.markDone([P(1), P(3)]);
    assert.deepEqual(
      q.takeDue(10).map((i) => i.path),
      [P(2)],
    );
    q.close();
  });

  void test('a failure delays only that path, with growing delays, then parks it with its error', () => {
    const q = open('b.db');
    q.enqueue([P(1), P(2)]);
    const delays: number[] = [];
    for (let i = 1; i < policy.maxAttempts; i++) {
      const r = q.markFailed(P(1), `boom ${i}`);
      assert.equal(r.parked, false);
      delays.push(r.delayMs);
      assert.deepEqual(
        q.takeDue(10).map((x) => x.path),
        [P(2)],
        'the failed path is not due, the other one is',
      );
      clock += r.delayMs;
      assert.deepEqual(
        q
          .takeDue(10)
          .map((x) => x.path)
          .sort(),
        [P(1), P(2)],
      );
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000]);
    const last = q.markFailed(P(1), 'still broken');
    assert.equal(last.parked, true);
    assert.deepEqual(q.counts(), { pending: 1, parked: 1 });
    assert.deepEqual(q.parked(), [{ path: P(1), attempts: 5, lastError: 'still broken' }]);
    clock += 1_000_000;
    assert.deepEqual(
      q.takeDue(10).map((x) => x.path),
      [P(2)],
      'a parked path is never due',
    );
    assert.equal(q.requeueParked(), 1);
    assert.deepEqual(q.counts(), { pending: 2, parked: 0 });
    assert.equal(q.takeDue(10).find((x) => x.path === P(1))?.attempts, 0);
    q.close();
  });

  void test('a new hint makes a backed-off path due at once and takes up a parked one', () => {
    const q = open('c.db');
    q.enqueue([P(1), P(2)]);
    const { delayMs } = q.markFailed(P(1), 'not valid yet');
    assert.equal(q.takeDue(10).length, 1);
    q.markDone([P(2)]);
    assert.equal(q.nextDueAt(), clock + delayMs);
    q.enqueue([P(2)]);
    q.enqueue([P(1)]);
    assert.equal(q.takeDue(10).length, 2);
    for (let i = 0; i < policy.maxAttempts; i++) q.markFailed(P(2), 'x');
    assert.equal(q.counts().parked, 1);
    q.enqueue([P(2)]);
    assert.deepEqual(q.counts(), { pending: 2, parked: 0 });
    q.close();
  });

  void test('rows survive closing; another connection (another process) sees them; state and presence are read', () => {
    const path = join(dir, 'd.db');
    const q = open('d.db');
    q.enqueue([P(7)]);
    q.setState('last_upload_at', '12345');
    q.close();
    const cache = PresenceCache.open(path, { target: 'file:///x' });
    cache.add('a'.repeat(32));
    cache.setFlag('initial_scan_complete', true);
    const again = open('d.db');
    assert.deepEqual(
      again.takeDue(10).map((x) => x.path),
      [P(7)],
    );
    assert.equal(again.getState('last_upload_at'), '12345');
    assert.equal(readPresenceStatus(path).paths, 1);
    assert.equal(readPresenceStatus(path).initialScanComplete, true);
    cache.close();
    again.close();
  });

  void test('new builds come before the scan backlog, whenever each was queued; a hint moves a backlog path up', () => {
    const q = open('lanes.db');
    q.enqueue([P(1), P(2), P(3), P(4)], 'backlog');
    clock += 10;
    q.enqueue([P(5)]);
    assert.deepEqual(q.laneCounts(), { new: 1, backlog: 4 });
    assert.deepEqual(
      q.takeDue(3).map((i) => [i.path, i.lane]),
      [[P(5), 'new']],
      'a batch never mixes the lanes',
    );
    clock += 10;
    q.enqueue([P(3)]); // the watcher or the hook names a path the scan queued
    assert.deepEqual(
      q.takeDue(3).map((i) => i.path),
      [P(3), P(5)],
      'P(3) moves up, keeping its place in time (due since the scan)',
    );
    assert.deepEqual(q.laneCounts(), { new: 2, backlog: 3 });
    q.enqueue([P(3), P(5)], 'backlog'); // a later scan never moves a new build back
    assert.deepEqual(q.laneCounts(), { new: 2, backlog: 3 });
    assert.deepEqual(q.counts(), { pending: 5, parked: 0 });
    assert.deepEqual(q.countsQueuedBy(clock, 'new'), { pending: 2, parked: 0 }, 'what --wait waits for');
    assert.deepEqual(q.countsQueuedBy(clock, 'backlog'), { pending: 3, parked: 0 });
    q.close();
  });

  void test('a backed-off new build waits its delay while the backlog goes on; parked paths are in no lane', () => {
    const q = open('lanes-2.db');
    q.enqueue([P(1)], 'backlog');
    q.enqueue([P(2)]);
    const { delayMs } = q.markFailed(P(2), 'not valid yet');
    assert.deepEqual(
      q.takeDue(10).map((i) => i.path),
      [P(1)],
    );
    clock += delayMs;
    assert.deepEqual(
      q.takeDue(10).map((i) => i.path),
      [P(2)],
    );
    q.markDone([P(2)]);
    assert.deepEqual(
      q.takeDue(10).map((i) => [i.path, i.lane]),
      [[P(1), 'backlog']],
    );
    q.enqueue([P(2)]);
    for (let i = 0; i < policy.maxAttempts; i++) q.markFailed(P(1), 'x');
    assert.deepEqual(q.laneCounts(), { new: 1, backlog: 0 });
    q.close();
  });

  void test('markFailed of a path no longer queued does nothing', () => {
    const q = open('e.db');
    assert.deepEqual(q.markFailed(P(9), 'x'), { parked: false, delayMs: 0 });
    assert.deepEqual(q.counts(), { pending: 0, parked: 0 });
    q.close();
  });
});
