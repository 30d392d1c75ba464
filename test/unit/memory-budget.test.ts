import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultMemoryBudgetBytes, MemoryBudget } from '../../src/memory-budget.js';
import { s3BufferedPerUpload } from '../../src/storage/body-source.js';
import { readerShare } from '../../src/cli/upload-deps.js';
import { NarMemory } from '../../src/chunk-pool.js';
import { ComputePool, ZSTD_FRAME_BYTES } from '../../src/upload/compute-pool.js';

const MiB = 1024 * 1024;
/** A store that holds four 8 MiB parts per large body, as S3ObjectStore does. */
const S3_LIKE = { bufferedPerUpload: (size: number) => Math.min(size, 32 * MiB) };

describe('the default budget', () => {
  test('64 MiB on 2 cores, 8 MiB more per core, at most 176 MiB', () => {
    assert.equal(defaultMemoryBudgetBytes(2), 64 * MiB);
    assert.equal(defaultMemoryBudgetBytes(1), 56 * MiB);
    assert.equal(defaultMemoryBudgetBytes(4), 80 * MiB);
    assert.equal(defaultMemoryBudgetBytes(16), 176 * MiB);
    assert.equal(defaultMemoryBudgetBytes(128), 176 * MiB);
  });

  test('on any core count, every core up to 16 gets a frame and one S3 upload of 8 MiB parts still fits', () => {
    const part = 8 * MiB;
    const upload = s3BufferedPerUpload(part, undefined, part * 64);
    for (let cores = 1; cores <= 64; cores++) {
      const total = defaultMemoryBudgetBytes(cores);
      // As the runtime sets them up for S3 (cli/upload-deps.ts): frames first, at most half; the
      // reader's pools an eighth each for reads and zstd output; bodies get the rest.
      const budget = new MemoryBudget(total);
      const frames = Math.min(cores, Math.floor(total / 2 / ZSTD_FRAME_BYTES));
      const pool = new ComputePool(frames, ZSTD_FRAME_BYTES, budget);
      assert.equal(pool.threads, frames, `${cores} cores`);
      assert.ok(frames >= Math.min(cores, 16), `${cores} cores: ${frames} frames`);
      new NarMemory(budget, readerShare(S3_LIKE, budget));
      assert.ok(budget.free >= upload, `${cores} cores: ${budget.free} bytes left for bodies`);
    }
  });
});

describe("the reader's share (cli/upload-deps.ts)", () => {
  test('beside S3 bodies an eighth; with a store that holds no body, all the frames leave', () => {
    for (const cores of [1, 2, 4, 16]) {
      const total = defaultMemoryBudgetBytes(cores);
      const toS3 = new MemoryBudget(total);
      new ComputePool(cores, ZSTD_FRAME_BYTES, toS3);
      assert.equal(readerShare(S3_LIKE, toS3), Math.floor(total / 8));

      const toDir = new MemoryBudget(total);
      new ComputePool(cores, ZSTD_FRAME_BYTES, toDir);
      const free = toDir.free;
      assert.equal(readerShare({ bufferedPerUpload: () => 0 }, toDir), free);
      assert.equal(readerShare({}, toDir), free);
      // With that share the reader keeps its 16 reads and slabs and 4 output slabs (38 MiB) where
      // they fit, never more than the budget.
      new NarMemory(toDir, readerShare({}, toDir));
      assert.ok(toDir.inUse <= total);
      if (free >= 38 * MiB) assert.equal(toDir.inUse - (total - free), 38 * MiB, `${cores} cores`);
    }
  });
});

describe('MemoryBudget', () => {
  test('never lends more than the total, whatever the order of takes and gives', async () => {
    const budget = new MemoryBudget(100);
    let lent = 0;
    let most = 0;
    // 40 borrowers of 1 to 60 bytes, each holding its bytes for a few ticks.
    const borrowers = Array.from({ length: 40 }, async (_, i) => {
      const n = 1 + ((i * 37) % 60);
      const got = await budget.take(n);
      assert.equal(got, n);
      lent += got;
      most = Math.max(most, lent);
      assert.ok(budget.inUse <= budget.total, `in use ${budget.inUse}`);
      await sleep(i % 3);
      lent -= got;
      budget.give(got);
    });
    await Promise.all(borrowers);
    assert.ok(most <= 100, `at most the total was out at once (${most})`);
    assert.equal(budget.inUse, 0);
    assert.equal(budget.peak, most);
  });

  test(
    'waiters are served once memory comes back; one that fits goes ahead of a heavier one',
    { timeout: 5000 },
    async () => {
      const budget = new MemoryBudget(100);
      const first = await budget.take(90);
      const order: string[] = [];
      const heavy = budget.take(50).then((n) => order.push(`heavy ${n}`));
      const light = budget.take(20).then((n) => order.push(`light ${n}`));
      await sleep(1);
      assert.equal(order.length, 0, 'nothing fits while 90 of 100 are out');
      assert.equal(budget.tryTake(20), undefined);
      budget.give(first);
      await Promise.all([heavy, light]);
      assert.deepEqual(order, ['heavy 50', 'light 20'], 'both fit: first come first served');
      assert.equal(budget.inUse, 70);
      budget.give(70);

      const big = await budget.take(80);
      const waits = [
        budget.take(60).then(() => order.push('60')),
        budget.take(10).then(() => order.push('10')),
      ];
      await sleep(1);
      assert.deepEqual(order.slice(2), ['10'], 'the light one did not queue behind the heavy one');
      budget.give(big);
      await Promise.all(waits);
      assert.deepEqual(order.slice(2), ['10', '60']);
    },
  );

  test('a request larger than the budget less its reservations waits for all of that and goes alone', async () => {
    const budget = new MemoryBudget(100);
    assert.equal(budget.reserve(30, 10), 30);
    const got = await budget.take(500);
    assert.equal(got, 70);
    assert.equal(budget.inUse, 100);
    assert.equal(budget.tryTake(1), undefined);
    budget.give(got);
    assert.equal(budget.inUse, 30);
  });

  test('reservations are whole units of what is free, and never wait', () => {
    const budget = new MemoryBudget(50);
    assert.equal(budget.reserve(32, 16), 32);
    assert.equal(budget.reserve(32, 16), 16, 'only one more unit fits');
    assert.equal(budget.reserve(32, 16), 0);
    assert.deepEqual(budget.use(), { total: 50, inUse: 48, peak: 48 });
  });

  test('giving back more than was lent is a bug, and says so', () => {
    const budget = new MemoryBudget(10);
    budget.reserve(4);
    assert.throws(() => budget.give(5), RangeError);
    assert.throws(() => new MemoryBudget(0), RangeError);
  });

  test('the compute pool and the NAR memory set their buffers aside from the budget', () => {
    const budget = new MemoryBudget(40 * MiB);
    const pool = new ComputePool(4, 16 * MiB, budget);
    assert.equal(pool.threads, 2, 'two 16 MiB frames fit in 40 MiB');
    assert.equal(budget.inUse, 32 * MiB);
    new NarMemory(budget);
    assert.equal(budget.inUse, 32 * MiB + 6 * (MiB + 256 * 1024), 'the reader keeps what fits in the rest');
    assert.ok(budget.inUse <= budget.total);
  });
});
