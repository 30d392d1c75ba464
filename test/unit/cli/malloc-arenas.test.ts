// The daemon's re-execution with MALLOC_ARENA_MAX (src/cli/malloc-arenas.ts), with a recording
// stand-in for process.execve; the real exec is checked on the built CLI in
// test/integration/local-target-modules.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { limitMallocArenas } from '../../../src/cli/malloc-arenas.js';
import { recordingExec } from '../../helpers/recording-exec.js';

const deps = recordingExec;

test('executes node again with the same options and arguments and MALLOC_ARENA_MAX=2 added', () => {
  const { d, calls } = deps();
  assert.equal(limitMallocArenas(d), true);
  assert.deepEqual(calls, [
    {
      file: '/bin/node',
      args: ['/bin/node', '--heapsnapshot-signal=SIGUSR2', '/loft/dist/cli/main.js', '-c', 'loft.toml'],
      env: { PATH: '/bin', MALLOC_ARENA_MAX: '2' },
    },
  ]);
});

test('leaves a MALLOC_ARENA_MAX the environment sets, other platforms and Nodes without execve alone', () => {
  for (const edits of [
    { env: { MALLOC_ARENA_MAX: '8' } },
    { env: { MALLOC_ARENA_MAX: '' } },
    { platform: 'darwin' as const },
    { execve: undefined },
  ]) {
    const { d, calls } = deps(edits);
    assert.equal(limitMallocArenas(d), false, JSON.stringify(edits));
    assert.deepEqual(calls, []);
  }
});
