// When a queued path is tried again after a failure. Pure: the queue stores the result.
// Exponential backoff with a cap, so a path that is not valid yet (its build is still running) is
// looked at again soon, while a path that keeps failing costs little; after `maxAttempts` failures
// the path is parked with its last error instead of being retried forever.

export interface RetryPolicy {
  /** Delay after the first failure. */
  baseMs: number;
  /** Longest delay between two attempts. */
  maxMs: number;
  /** Failures after which a path is parked (shown by `loft --status`, retried on the next start). */
  maxAttempts: number;
}

/** 2 s, 4 s, 8 s ... up to 10 min; parked after 12 failures (about 45 minutes of trying). */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 2000, maxMs: 600_000, maxAttempts: 12 };

/**
 * Delay before the next attempt after `attempts` failures (1 = the first failure). `random` in
 * [0, 1) spreads retries by up to -25 %, so a burst of paths that failed together does not come
 * back as one burst.
 */
export function backoffDelay(attempts: number, policy: RetryPolicy, random: () => number = () => 1): number {
  const exponent = Math.max(0, Math.min(attempts - 1, 40));
  const raw = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(raw * (0.75 + 0.25 * random()));
}

export function shouldPark(attempts: number, policy: RetryPolicy): boolean {
  return attempts >= policy.maxAttempts;
}
