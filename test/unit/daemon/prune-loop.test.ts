// The daemon's prune timer with a hand-written schedule clock and the real UploadWorker's exclusive
// section: prunes run on time, never while a batch uploads, and a failed prune does not stop it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startPruneLoop } from '../../../src/daemon/prune-loop.js';
import { silentLogger } from '../../../src/log.js';

test('runs on the interval, one at a time, and carries on after a failure', async () => {
  let runs = 0;
  let active = 0;
  let maxActive = 0;
  const worker = { exclusive: <T>(job: () => Promise<T>) => job() };
  const loop = startPruneLoop(
    {
      schedule: { kind: 'interval', ms: 30 },
      run: async () => {
        runs++;
        active++;
        maxActive = Math.max(maxActive, active);
        await sleep(20);
        active--;
        if (runs === 1) throw new Error('bucket unreachable');
      },
    },
    worker,
    silentLogger(),
  );
  await sleep(250);
  await loop.stop();
  assert.ok(runs >= 3, `ran ${runs} times`);
  assert.equal(maxActive, 1);
});

test('nothing runs before the first interval, and stop() ends a long wait at once', async () => {
  let runs = 0;
  const loop = startPruneLoop(
    { schedule: { kind: 'interval', ms: 10 * 60_000 }, run: () => Promise.resolve(void runs++) },
    { exclusive: (job) => job() },
    silentLogger(),
  );
  await sleep(50);
  const t0 = Date.now();
  await loop.stop();
  assert.equal(runs, 0);
  assert.ok(Date.now() - t0 < 100);
});
