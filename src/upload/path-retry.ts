// Retrying one path's whole upload. The SDK retries single requests, but a NAR stream cannot be
// replayed once a multipart upload broke mid-way: the path is dumped and sent again from the start.
import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryOptions {
  attempts: number;
  baseMs: number;
  retryable: (err: unknown) => boolean;
  onRetry?: (attempt: number, err: unknown, delayMs: number) => void;
  signal?: AbortSignal;
  random?: () => number;
}

export async function runWithRetries<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const random = opts.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= opts.attempts || !opts.retryable(err) || opts.signal?.aborted) throw err;
      // Exponential backoff with jitter so hosts retrying the same failing endpoint spread out.
      const delayMs = Math.round(opts.baseMs * 4 ** (attempt - 1) * (0.5 + random() / 2));
      opts.onRetry?.(attempt, err, delayMs);
      await sleep(delayMs, undefined, opts.signal ? { signal: opts.signal } : undefined);
    }
  }
}
