import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKOFF } from '../../../src/backoff.js';
import { runWithRetries } from '../../../src/upload/path-retry.js';

test('retries retryable failures with growing delays, then succeeds', async () => {
  let calls = 0;
  const delays: number[] = [];
  const result = await runWithRetries(
    () => (++calls < 3 ? Promise.reject(new Error('flaky')) : Promise.resolve('ok')),
    {
      policy: { ...BACKOFF.path, maxAttempts: 3, baseMs: 1 },
      retryable: () => true,
      random: () => 1,
      onRetry: (_a, _e, d) => delays.push(d),
    },
  );
  assert.equal(result, 'ok');
  assert.equal(calls, 3);
  assert.deepEqual(delays, [1, 4]);
});

test('gives up after the last attempt with the last error', async () => {
  let calls = 0;
  await assert.rejects(
    runWithRetries(() => Promise.reject(new Error(`fail ${++calls}`)), {
      policy: { ...BACKOFF.path, maxAttempts: 2, baseMs: 1 },
      retryable: () => true,
    }),
    /fail 2/,
  );
});

test('does not retry what is not retryable', async () => {
  let calls = 0;
  await assert.rejects(
    runWithRetries(() => Promise.reject(new Error(`fail ${++calls}`)), {
      policy: { ...BACKOFF.path, maxAttempts: 5, baseMs: 1 },
      retryable: () => false,
    }),
    /fail 1/,
  );
});
