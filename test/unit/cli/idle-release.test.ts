// The daemon's uploader gives memory back once it has gone idle (src/cli/memory-use.ts): after
// `idleMs` the pools, the local database's page caches, then a collection of V8's heap, then a trim
// of the C heap; a second trim after `lateTrimMs`. Nothing while an upload runs, and a new upload
// puts it all off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { recordingMemory } from '../../../src/cli/memory-use.js';
import type { Runtime } from '../../../src/cli/runtime.js';
import type { TrimOutcome } from '../../../src/state/native-heap-trim.js';

function fakeRuntime(events: string[]): Runtime {
  return {
    uploads: {
      computePool: { drain: () => events.push('compute pool drained') },
      narWorkers: { close: () => events.push('NAR workers ended') },
      narMemory: { drain: () => events.push('NAR memory drained') },
      memoryBudget: { use: () => ({ total: 1, inUse: 0, peak: 0 }) },
    },
    store: { releaseIdleMemory: () => events.push('store released') },
  } as unknown as Runtime;
}

function setup(idleMs: number, lateTrimMs: number) {
  const events: string[] = [];
  const trim = (): TrimOutcome => {
    events.push('trimmed');
    return 'released';
  };
  const upload = recordingMemory(
    async (ms: number) => {
      await sleep(ms);
      return ms;
    },
    fakeRuntime(events),
    { setState: () => undefined },
    {
      idleMs,
      lateTrimMs,
      trim,
      shrinkDatabase: () => events.push('database shrunk'),
      collect: () => events.push('collected'),
    },
  );
  return { events, upload };
}

test('idle: the pools are drained and the C heap trimmed, then trimmed once more later', async () => {
  const { events, upload } = setup(100, 400);
  await upload(1);
  await sleep(30);
  assert.deepEqual(events, [], 'nothing before the idle delay');
  await sleep(170);
  assert.deepEqual(events, [
    'compute pool drained',
    'NAR workers ended',
    'NAR memory drained',
    'store released',
    'database shrunk',
    'collected',
    'trimmed',
  ]);
  await sleep(350);
  assert.deepEqual(events.slice(7), ['trimmed'], 'the late trim');
  await sleep(300);
  assert.equal(events.length, 8, 'and no more while idle');
});

test('nothing is released while an upload runs, and a new upload puts the release off', async () => {
  const { events, upload } = setup(100, 200);
  const long = upload(400); // longer than both delays
  await upload(1); // ends while `long` still runs: not idle
  await sleep(300);
  assert.deepEqual(events, [], 'an upload still runs');
  await long;
  await sleep(50);
  await upload(1); // a new batch before the idle delay ran out
  await sleep(70);
  assert.deepEqual(events, [], 'put off by the new upload');
  await sleep(250);
  assert.deepEqual(events, [
    'compute pool drained',
    'NAR workers ended',
    'NAR memory drained',
    'store released',
    'database shrunk',
    'collected',
    'trimmed',
    'trimmed',
  ]);
});

test('a release that throws does not end the process; the late trim still runs', async () => {
  let trims = 0;
  const upload = recordingMemory(
    () => Promise.resolve(1),
    fakeRuntime([]),
    { setState: () => undefined },
    {
      idleMs: 20,
      lateTrimMs: 60,
      shrinkDatabase: () => undefined,
      collect: () => {
        throw new Error('collection failed');
      },
      trim: () => {
        trims++;
        return 'released';
      },
    },
  );
  await upload();
  await sleep(150);
  assert.equal(trims, 1, 'the first trim came after the failed collection; the late one ran');
});
