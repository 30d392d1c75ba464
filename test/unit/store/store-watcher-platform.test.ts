// The store watcher's reconciling listing runs more often on macOS, where FSEvents losses are
// discarded by libuv without a word (src/store/store-watcher.ts), than on Linux.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultReconcileMs } from '../../../src/store/store-watcher.js';

test('the reconciling listing runs every 10 s on macOS and every minute on Linux', () => {
  assert.deepEqual(
    [defaultReconcileMs('darwin'), defaultReconcileMs('linux'), defaultReconcileMs()],
    [10_000, 60_000, process.platform === 'darwin' ? 10_000 : 60_000],
  );
});
