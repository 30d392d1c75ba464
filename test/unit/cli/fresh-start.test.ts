// When the daemon starts afresh (src/cli/fresh-start.ts): enough uploads, nothing queued or parked,
// once; and how it executes itself. The whole daemon doing it: test/integration/daemon-fresh-start.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRESH_START_ENV, FreshStart, takeFreshStartMark } from '../../../src/cli/fresh-start.js';
import type { ExecDeps } from '../../../src/cli/malloc-arenas.js';
import { recordingExec } from '../../helpers/recording-exec.js';

const deps = (edits: Partial<ExecDeps> = {}) =>
  recordingExec({ env: { PATH: '/bin', MALLOC_ARENA_MAX: '2' }, ...edits });

/** A batch that uploaded `n` paths and found `present` in the cache. */
const batch = (n: number, present = 0) => ({
  uploaded: Array.from({ length: n }, (_, i) => `p${i}`),
  alreadyPresent: present,
});
const empty = { pending: 0, parked: 0 };

test('due once the batches uploaded enough paths and nothing waits; asked for once', async () => {
  const fresh = new FreshStart(5, deps().d);
  const upload = fresh.counting((n: number, present: number) => Promise.resolve(batch(n, present)));
  await upload(3, 0);
  await upload(0, 100); // found in the cache: not counted
  assert.equal(fresh.requestIfDue(empty), false, '3 uploaded');
  await upload(2, 0);
  assert.equal(fresh.pathsUploaded, 5);
  assert.equal(fresh.requestIfDue({ pending: 1, parked: 0 }), false, 'a path is queued');
  assert.equal(fresh.requestIfDue({ pending: 0, parked: 1 }), false, 'a path is parked');
  assert.equal(fresh.signal.aborted, false);
  assert.equal(fresh.requestIfDue(empty), true);
  assert.equal(fresh.signal.aborted, true, 'the daemon is asked to stop');
  assert.equal(fresh.requestIfDue(empty), false, 'only once');
});

test('never with 0, nor where Node has no execve', async () => {
  for (const [after, d] of [
    [0, deps().d],
    [1, deps({ execve: undefined }).d],
  ] as const) {
    const fresh = new FreshStart(after, d);
    await fresh.counting(() => Promise.resolve(batch(10)))();
    assert.equal(fresh.requestIfDue(empty), false);
    assert.equal(fresh.signal.aborted, false);
  }
});

test('executes node again with the same options, arguments and environment, and the mark', () => {
  const { d, calls } = deps();
  new FreshStart(1, d).replaceProcess();
  assert.deepEqual(calls, [
    {
      file: '/bin/node',
      args: ['/bin/node', '--heapsnapshot-signal=SIGUSR2', '/loft/dist/cli/main.js', '-c', 'loft.toml'],
      env: { PATH: '/bin', MALLOC_ARENA_MAX: '2', [FRESH_START_ENV]: '1' },
    },
  ]);
});

test('the new image reads the mark once and keeps it from its children', () => {
  const env: NodeJS.ProcessEnv = { [FRESH_START_ENV]: '1', PATH: '/bin' };
  assert.equal(takeFreshStartMark(env), true);
  assert.deepEqual(env, { PATH: '/bin' });
  assert.equal(takeFreshStartMark(env), false);
});
