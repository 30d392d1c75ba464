// How long to wait before trying again, for every retry loop in loft. One formula, named policies:
// the delay's ceiling grows by `factor` from `baseMs` up to `maxMs`, and the delay is drawn from
// [jitterFloor * ceiling, ceiling). Pure; randomness is injected so tests are deterministic.
//
// Why the policies differ:
//  - request: the SDK retries one S3 request; many uploads fail together (a 503 SlowDown burst), so
//    "full jitter" (floor 0) spreads them over the whole window.
//  - throttled: a request the server throttled (429, 503, SlowDown). Nix 2.35 (NixOS/nix#15449,
//    after #15023) waits longer for these than for other failures, and so does loft: a server
//    asking for fewer requests is not helped by a retry 250 ms later. A Retry-After header is a
//    floor on top of which this delay's jitter spreads (src/storage/retry.ts).
//  - path: a path whose stream broke is dumped and sent again from its start; few tries, growing
//    fast, since the SDK already retried each request inside it.
//  - queue: a queued path in the daemon; one not valid yet (its build still running) is looked at
//    again soon, one that keeps failing costs little, and after maxAttempts it is parked.
//  - batch / storageWait: the whole target failed (or is not up yet at start): never give up, at
//    most a minute between looks.
//  - accessLost: the target refuses loft (credentials revoked, bucket deleted) while the daemon
//    runs. Only a person can fix that, so the daemon looks again rarely, growing to 10 minutes, and
//    each look is one cheap request (src/daemon/worker.ts).

export interface Backoff {
  /** Ceiling of the first retry's delay. */
  baseMs: number;
  /** The ceiling grows by this per retry. */
  factor: number;
  /** No delay exceeds this. */
  maxMs: number;
  /** The delay is at least this fraction of its ceiling: 0 is full jitter, 1 none. */
  jitterFloor: number;
  /** Tries in all, the first one included (Infinity: until stopped). */
  maxAttempts: number;
}

export const BACKOFF = {
  /** 250 ms doubling to 20 s, full jitter; 6 tries (`s3.max_attempts` overrides). */
  request: { baseMs: 250, factor: 2, maxMs: 20_000, jitterFloor: 0, maxAttempts: 6 },
  /** 1 s doubling to 20 s, full jitter; tries as `request` (a Retry-After adds its wait on top). */
  throttled: { baseMs: 1000, factor: 2, maxMs: 20_000, jitterFloor: 0, maxAttempts: 6 },
  /** 1 s, then 4 s, each shortened by up to half; 3 tries. */
  path: { baseMs: 1000, factor: 4, maxMs: Infinity, jitterFloor: 0.5, maxAttempts: 3 },
  /** 2 s, 4 s, 8 s ... up to 10 min, shortened by up to a quarter; parked after 12 failures. */
  queue: { baseMs: 2000, factor: 2, maxMs: 600_000, jitterFloor: 0.75, maxAttempts: 12 },
  /** 1 s, 2 s ... up to 1 min. */
  batch: { baseMs: 1000, factor: 2, maxMs: 60_000, jitterFloor: 0.75, maxAttempts: Infinity },
  /** 15 s, 30 s ... up to 10 min, shortened by up to a quarter. */
  accessLost: { baseMs: 15_000, factor: 2, maxMs: 600_000, jitterFloor: 0.75, maxAttempts: Infinity },
  /** 1 s, 2 s ... up to 1 min. */
  storageWait: { baseMs: 1000, factor: 2, maxMs: 60_000, jitterFloor: 0.75, maxAttempts: Infinity },
} as const satisfies Record<string, Backoff>;

/**
 * The delay before retry number `retry` (1 = the first retry, after the first failure).
 * @param random a source of numbers in [0, 1); 1 gives the ceiling, 0 the floor.
 */
export function backoffDelay(policy: Backoff, retry: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, retry - 1), 40);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * policy.factor ** exponent);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.floor(ceiling * (policy.jitterFloor + (1 - policy.jitterFloor) * r));
}

/** Whether `attempts` tries used up the policy. */
export function attemptsExhausted(policy: Backoff, attempts: number): boolean {
  return attempts >= policy.maxAttempts;
}
