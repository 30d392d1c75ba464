// The daemon's prune timer with a hand-written worker whose exclusive section records what ran
// inside it: every prune runs inside the worker's exclusive section (so never while a batch
// uploads), a prune that outlasts the interval is never overlapped by the next, a failed prune does
// not stop the loop, and stop() ends a long wait. Waits are for events, with generous deadlines,
// never for a fixed time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startPruneLoop } from '../../../src/daemon/prune-loop.js';
import { silentLogger } from '../../../src/log.js';

/** Resolves once `done()` holds; fails after `ms` (a deadline, not a measurement). */
async function until(done: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(5);
  }
}

/** A worker whose exclusive section is a flag, so a run can tell whether it is inside one. */
function recordingWorker() {
  const w = {
    inside: false,
    sections: 0,
    async exclusive<T>(job: () => Promise<T>): Promise<T> {
      w.sections++;
      w.inside = true;
      try {
        return await job();
      } finally {
        w.inside = false;
      }
    },
  };
  return w;
}

test('prunes run inside the worker, one at a time even when one outlasts the interval, and go on after a failure', async () => {
  const worker = recordingWorker();
  let runs = 0;
  let active = 0;
  let maxActive = 0;
  let outsideWorker = 0;
  const loop = startPruneLoop(
    {
      // Each prune takes longer than the interval: a loop that did not wait for it would start
      // the next one meanwhile.
      schedule: { kind: 'interval', ms: 5 },
      run: async () => {
        runs++;
        if (!worker.inside) outsideWorker++;
        active++;
        maxActive = Math.max(maxActive, active);
        await sleep(30);
        active--;
        if (runs === 1) throw new Error('bucket unreachable');
      },
    },
    worker,
    silentLogger(),
  );
  await until(() => runs >= 3);
  await loop.stop();
  assert.equal(maxActive, 1, 'a prune started while another ran');
  assert.equal(outsideWorker, 0, 'a prune ran outside the worker exclusive section');
  assert.equal(worker.sections, runs);
});

test('nothing runs before the first interval, and stop() ends a long wait', async () => {
  let runs = 0;
  const loop = startPruneLoop(
    { schedule: { kind: 'interval', ms: 10 * 60_000 }, run: () => Promise.resolve(void runs++) },
    recordingWorker(),
    silentLogger(),
  );
  // stop() must end the ten-minute wait; without it this would hang until the deadline below.
  const deadline = new AbortController();
  const timeout = sleep(10_000, false, { signal: deadline.signal }).catch(() => false);
  const stopped = await Promise.race([loop.stop().then(() => true), timeout]);
  deadline.abort();
  assert.equal(stopped, true, 'stop() did not end the wait');
  assert.equal(runs, 0);
});
