// The one decision about which failures a path's upload tries again (errors.ts), as a table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AbortedError,
  CorruptPathError,
  DependencyFailedError,
  NixError,
  PruneConflictError,
  StorageError,
  isRetryablePathError,
} from '../../src/errors.js';
import { runWithRetries } from '../../src/upload/path-retry.js';

const cases: Array<[string, unknown, boolean]> = [
  ['a 5xx after the SDK retries', new StorageError('put got HTTP 500', { transient: true }), true],
  [
    'an unreachable endpoint',
    new StorageError('x', { code: 'E_STORAGE_UNREACHABLE', transient: true }),
    true,
  ],
  ['a broken stream (not a LoftError)', new Error('socket hang up'), true],
  ['Nix failed once', new NixError('nix crashed'), true],
  ['contents differ from what Nix registered', new CorruptPathError('/nix/store/x', 'hash'), false],
  ['access denied: the whole target', new StorageError('x', { code: 'E_STORAGE_AUTH' }), false],
  ['no such bucket', new StorageError('x', { code: 'E_STORAGE_NO_BUCKET' }), false],
  ['not S3', new StorageError('x', { code: 'E_STORAGE_NOT_S3' }), false],
  ['an unwritable directory', new StorageError('x', { code: 'E_STORAGE_UNWRITABLE' }), false],
  ['a reference failed', new DependencyFailedError('ref'), false],
  ['a prune is deleting it', new PruneConflictError('prune'), false],
  ['shutting down', new AbortedError('stop'), false],
];

for (const [what, err, expected] of cases) {
  test(`isRetryablePathError: ${what} -> ${expected}`, () => {
    assert.equal(isRetryablePathError(err), expected);
  });
}

test('runWithRetries uses isRetryablePathError when no other decision is given', async () => {
  const policy = { baseMs: 1, factor: 1, maxMs: 1, jitterFloor: 1, maxAttempts: 3 };
  let calls = 0;
  await assert.rejects(
    runWithRetries(
      () => {
        calls++;
        return Promise.reject(new StorageError('denied', { code: 'E_STORAGE_AUTH' }));
      },
      { policy },
    ),
    /denied/,
  );
  assert.equal(calls, 1);
  calls = 0;
  await assert.rejects(
    runWithRetries(
      () => {
        calls++;
        return Promise.reject(new StorageError('500', { transient: true }));
      },
      { policy },
    ),
  );
  assert.equal(calls, 3);
});
