// When to try an S3 request again, and how long to wait first (BACKOFF.request, and
// BACKOFF.throttled for a throttled answer, in src/backoff.ts). Pure: no timers, no SDK imports;
// randomness and the clock are injected so tests are deterministic. The SDK's retry middleware
// does the waiting (see createRetryStrategy), so every request, including each multipart UploadPart
// calls, follows this one policy.
//
// Throttling follows Nix 2.35 (NixOS/nix#15449, the fix for #15023): 503 counts as throttling like
// 429, full jitter, and a Retry-After header (seconds or an HTTP-date) is a floor: the jittered
// delay is added on top of it, so clients told the same time do not all come back at once.
import { attemptsExhausted, BACKOFF, backoffDelay, type Backoff } from '../backoff.js';

/** Why a request failed, as far as retrying goes. Only 'fatal' is not retried. */
export type FailureKind = 'throttling' | 'server' | 'timeout' | 'network' | 'fatal';

// S3 and its clones name throttling in the error code (S3: 503 SlowDown; others: 429 and friends).
const THROTTLING_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'BandwidthLimitExceeded',
]);
const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const TIMEOUT_ERRNOS = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT']);
// A refused connection or a failed DNS look-up is retried too: an endpoint that restarts or a
// resolver that hiccups is common for a long-running daemon, and the backoff bounds the cost.
const NETWORK_ERRNOS = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
]);

interface ErrorFields {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  message?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

function fieldsOf(err: unknown): ErrorFields | undefined {
  return typeof err === 'object' && err !== null ? err : undefined;
}

/** The HTTP status of an SDK error, if it got that far. */
export function httpStatusOf(err: unknown): number | undefined {
  const status = fieldsOf(err)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** The S3 error code (`NoSuchBucket`, `SlowDown`, ...) or Node errno (`ECONNRESET`), if any. */
export function errorCodeOf(err: unknown): string | undefined {
  const f = fieldsOf(err);
  for (const v of [f?.Code, f?.code, f?.name]) if (typeof v === 'string' && v !== 'Error') return v;
  return undefined;
}

function classifyOne(f: ErrorFields, status: number | undefined): FailureKind | undefined {
  const names = [f.name, f.code, f.Code].filter((v): v is string => typeof v === 'string');
  // 503 is S3's SlowDown status, and R2, GCS and others send it bare when they shed load.
  if (status === 429 || status === 503 || names.some((n) => THROTTLING_CODES.has(n))) return 'throttling';
  if (names.some((n) => TIMEOUT_NAMES.has(n) || TIMEOUT_ERRNOS.has(n))) return 'timeout';
  if (names.some((n) => NETWORK_ERRNOS.has(n))) return 'network';
  if (typeof f.message === 'string' && /socket hang up/i.test(f.message)) return 'network';
  // 501 Not Implemented is a definite answer (the server lacks the operation): asking again cannot help.
  if (status !== undefined && status >= 500 && status <= 599 && status !== 501) return 'server';
  return undefined;
}

/**
 * Sorts a failure. 4xx answers (403, 404, 400, ...) are fatal except 429 and throttling codes;
 * an AbortError (the caller gave up) is fatal. Causes are followed a few levels deep, because
 * Node wraps socket errors.
 */
export function classifyFailure(err: unknown): FailureKind {
  let current: unknown = err;
  for (let depth = 0; depth < 5; depth++) {
    const f = fieldsOf(current);
    if (!f) return 'fatal';
    if (f.name === 'AbortError') return 'fatal';
    const status = httpStatusOf(current);
    const kind = classifyOne(f, status);
    if (kind) return kind;
    // An answer from the server is final; only errors without one may hide a cause worth retrying.
    if (status !== undefined) return 'fatal';
    current = f.cause;
  }
  return 'fatal';
}

export function isRetryable(err: unknown): boolean {
  return classifyFailure(err) !== 'fatal';
}

/** The longest Retry-After loft waits out; a server asking for more gets the request failed instead. */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

/**
 * Milliseconds a Retry-After value asks for (RFC 9110: delay-seconds or an HTTP-date), 0 for a
 * time already past, undefined when the value is neither.
 */
export function parseRetryAfter(value: string, nowMs: number): number | undefined {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  // An HTTP-date names its zone (IMF-fixdate "GMT"); Date.parse reads it and its obsolete forms.
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** The Retry-After of a failed request's answer, in ms from `nowMs`, if it carried one. */
export function retryAfterOf(err: unknown, nowMs: number): number | undefined {
  const headers = (fieldsOf(err) as { $response?: { headers?: unknown } } | undefined)?.$response?.headers;
  if (typeof headers !== 'object' || headers === null) return undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'retry-after' && typeof value === 'string')
      return parseRetryAfter(value, nowMs);
  }
  return undefined;
}

/** The SDK's RetryToken, structurally (this file imports nothing from the SDK). */
export interface RetryToken {
  getRetryCount(): number;
  getRetryDelay(): number;
}

/**
 * An object that fits the SDK's RetryStrategyV2: the middleware asks it after each failure whether
 * to go on and sleeps the returned delay. Throwing means "give up"; the middleware then throws the
 * request's own error.
 */
export interface RetryNotice {
  retry: number;
  delayMs: number;
  kind: FailureKind;
  code: string | undefined;
  /** What the answer's Retry-After asked for, when it had one. */
  retryAfterMs?: number;
}

export interface RetryStrategyOptions {
  /** Delays after a throttled answer (default BACKOFF.throttled, with `policy`'s maxAttempts). */
  throttled?: Backoff;
  now?: () => number;
}

export function createRetryStrategy(
  policy: Backoff,
  random: () => number = Math.random,
  onRetry?: (notice: RetryNotice) => void,
  options: RetryStrategyOptions = {},
) {
  const throttled = options.throttled ?? { ...BACKOFF.throttled, maxAttempts: policy.maxAttempts };
  const now = options.now ?? Date.now;
  const token = (count: number, delay: number): RetryToken => ({
    getRetryCount: () => count,
    getRetryDelay: () => delay,
  });
  return {
    acquireInitialRetryToken(_scope: string): Promise<RetryToken> {
      return Promise.resolve(token(0, 0));
    },
    refreshRetryTokenForRetry(previous: RetryToken, info: { error?: unknown }): Promise<RetryToken> {
      const retry = previous.getRetryCount() + 1;
      const kind = classifyFailure(info.error);
      if (attemptsExhausted(policy, retry) || kind === 'fatal')
        return Promise.reject(new Error('not retrying'));
      const retryAfterMs = retryAfterOf(info.error, now());
      if (retryAfterMs !== undefined && retryAfterMs > MAX_RETRY_AFTER_MS)
        return Promise.reject(new Error('not retrying: Retry-After too far away'));
      const jittered = backoffDelay(kind === 'throttling' ? throttled : policy, retry, random);
      const delayMs = (retryAfterMs ?? 0) + jittered;
      const notice: RetryNotice = { retry, delayMs, kind, code: errorCodeOf(info.error) };
      if (retryAfterMs !== undefined) notice.retryAfterMs = retryAfterMs;
      onRetry?.(notice);
      return Promise.resolve(token(retry, delayMs));
    },
    recordSuccess(_token: RetryToken): void {},
  };
}
