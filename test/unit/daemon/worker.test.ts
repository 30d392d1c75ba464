// The upload worker over a real queue file, with a hand-written uploader (our UploadBatch type).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UploadQueue } from '../../../src/state/queue.js';
import { UploadWorker, type UploadBatch } from '../../../src/daemon/worker.js';
import { uploadReport as report } from '../../helpers/upload-report.js';

const P = (n: number) => `/nix/store/${'b'.repeat(31)}${'acdfghijkl'[n]}-p${n}`;

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(10);
}

void describe('UploadWorker', () => {
  let dir: string;
  let n = 0;
  const queues: UploadQueue[] = [];
  const workers: UploadWorker[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loft-worker-'));
  });
  after(async () => {
    for (const w of workers) await w.stop(0);
    for (const q of queues) q.close();
    await rm(dir, { recursive: true, force: true });
  });
  function setup(upload: UploadBatch, extra: { exists?: (p: string) => boolean; pollMs?: number } = {}) {
    const queue = UploadQueue.open(join(dir, `q${n++}.db`), {
      policy: { baseMs: 50, maxMs: 200, maxAttempts: 3 },
    });
    const worker = new UploadWorker({
      queue,
      upload,
      pollMs: extra.pollMs ?? 50,
      batchRetry: { baseMs: 30, maxMs: 100 },
      pathExists: (p) => Promise.resolve(extra.exists?.(p) ?? true),
    });
    queues.push(queue);
    workers.push(worker);
    return { queue, worker };
  }

  void test('uploads due paths, removes them from the queue and records the upload time', async () => {
    const seen: string[][] = [];
    const { queue, worker } = setup((paths) => {
      seen.push(paths);
      return Promise.resolve(report(paths));
    });
    queue.enqueue([P(1), P(2)]);
    worker.start();
    await until(() => queue.counts().pending === 0);
    assert.deepEqual(seen.flat().sort(), [P(1), P(2)]);
    assert.equal(worker.stats.uploaded, 2);
    assert.ok(Number(queue.getState('last_upload_at')) > 0);
  });

  void test('one failing path backs off and is parked; the others are done and later paths still flow', async () => {
    let calls = 0;
    const { queue, worker } = setup((paths) => {
      calls++;
      const failed = paths.includes(P(3))
        ? [{ path: P(3), code: 'E_STORAGE' as const, message: 'nope' }]
        : [];
      return Promise.resolve(report(paths, failed));
    });
    queue.enqueue([P(3), P(4)]);
    worker.start();
    await until(() => queue.counts().parked === 1);
    assert.deepEqual(queue.counts(), { pending: 0, parked: 1 });
    assert.equal(calls, 3, 'tried exactly maxAttempts times');
    assert.match(queue.parked()[0]!.lastError, /E_STORAGE: nope/);
    queue.enqueue([P(5)]);
    worker.notify();
    await until(() => queue.counts().pending === 0);
    assert.equal(queue.counts().pending, 0);
  });

  void test('a path not valid yet is retried; one that left the store is dropped', async () => {
    let valid = false;
    const { queue, worker } = setup(
      (paths) => {
        const failed = paths
          .filter((p) => p === P(6) || (p === P(7) && !valid))
          .map((path) => ({ path, code: 'E_INVALID_PATH' as const, message: 'not valid' }));
        return Promise.resolve(report(paths, failed));
      },
      { exists: (p) => p !== P(6) },
    );
    queue.enqueue([P(6), P(7)]);
    worker.start();
    await until(() => queue.takeDue(10).length === 0 && queue.counts().pending === 1);
    assert.deepEqual(queue.counts(), { pending: 1, parked: 0 }, 'P6 dropped, P7 waiting');
    valid = true;
    await until(() => queue.counts().pending === 0);
    assert.equal(worker.stats.uploaded, 1);
  });

  void test('a whole batch failing counts against no path, and the worker retries it', async () => {
    let calls = 0;
    const { queue, worker } = setup((paths) => {
      calls++;
      if (calls <= 4) return Promise.reject(new Error('bucket unreachable'));
      return Promise.resolve(report(paths));
    });
    queue.enqueue([P(8)]);
    worker.start();
    await until(() => queue.counts().pending === 0);
    assert.equal(calls, 5);
    assert.deepEqual(queue.counts(), { pending: 0, parked: 0 }, 'never parked although it failed 4 times');
  });

  void test('notify wakes the worker before the poll interval', async () => {
    const { queue, worker } = setup((paths) => Promise.resolve(report(paths)), { pollMs: 60_000 });
    worker.start();
    await sleep(50);
    queue.enqueue([P(9)]);
    const t0 = Date.now();
    worker.notify();
    await until(() => queue.counts().pending === 0, 2000);
    assert.equal(queue.counts().pending, 0);
    assert.ok(Date.now() - t0 < 2000);
  });

  void test('stop lets the batch in flight finish within the grace period', async () => {
    const { queue, worker } = setup(async (paths) => {
      await sleep(150);
      return report(paths);
    });
    queue.enqueue([P(1)]);
    worker.start();
    await sleep(30);
    await worker.stop(5000);
    assert.equal(queue.counts().pending, 0);
  });

  void test('stop aborts a batch that outlives the grace period and keeps its paths queued', async () => {
    let aborted = false;
    const { queue, worker } = setup(async (paths, signal) => {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      aborted = true;
      return report(
        paths,
        paths.map((path) => ({ path, code: 'E_ABORTED', message: 'aborted' })),
      );
    });
    queue.enqueue([P(2)]);
    worker.start();
    await sleep(30);
    const t0 = Date.now();
    await worker.stop(100);
    assert.ok(aborted);
    assert.ok(Date.now() - t0 < 1000);
    assert.deepEqual(queue.counts(), { pending: 1, parked: 0 });
    assert.equal(queue.takeDue(10)[0]?.attempts, 0, 'no failure counted for a shutdown');
  });

  void test('exclusive() waits for the batch in flight and holds new batches until it ends', async () => {
    const events: string[] = [];
    let release: () => void = () => undefined;
    const { queue, worker } = setup(async (paths) => {
      events.push(`batch ${paths.length}`);
      await new Promise<void>((r) => (release = r));
      events.push('batch end');
      return report(paths);
    });
    queue.enqueue([P(1)]);
    worker.start();
    await until(() => events.length === 1);
    const pruned = worker.exclusive(async () => {
      events.push('prune');
      queue.enqueue([P(2)]);
      await sleep(120); // several poll intervals: no batch may start meanwhile
      events.push('prune end');
    });
    await sleep(30);
    release();
    await pruned;
    await until(() => events.length >= 5);
    release();
    await until(() => queue.counts().pending === 0);
    assert.deepEqual(events.slice(0, 5), ['batch 1', 'batch end', 'prune', 'prune end', 'batch 1']);
  });
});
