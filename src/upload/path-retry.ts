// Retrying one path's whole upload. The SDK retries single requests, but a NAR stream cannot be
// replayed once a multipart upload broke mid-way: the path is dumped and sent again from the start.
import { setTimeout as sleep } from 'node:timers/promises';
import { attemptsExhausted, backoffDelay, type Backoff } from '../backoff.js';
import { isRetryablePathError } from '../errors.js';

export interface RetryOptions {
  /** BACKOFF.path unless a caller (a test) shortens it. */
  policy: Backoff;
  /** Which failures are tried again (default: isRetryablePathError, the one decision in errors.ts). */
  retryable?: (err: unknown) => boolean;
  onRetry?: (attempt: number, err: unknown, delayMs: number) => void;
  signal?: AbortSignal;
  random?: () => number;
}

export async function runWithRetries<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (
        attemptsExhausted(opts.policy, attempt) ||
        !(opts.retryable ?? isRetryablePathError)(err) ||
        opts.signal?.aborted
      )
        throw err;
      const delayMs = backoffDelay(opts.policy, attempt, opts.random);
      opts.onRetry?.(attempt, err, delayMs);
      await sleep(delayMs, undefined, opts.signal ? { signal: opts.signal } : undefined);
    }
  }
}
