import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BACKOFF, backoffDelay, type Backoff } from '../../../src/backoff.js';
import {
  classifyFailure,
  createRetryStrategy,
  isRetryable,
  parseRetryAfter,
  type RetryNotice,
} from '../../../src/storage/retry.js';

const policy: Backoff = { ...BACKOFF.request, maxAttempts: 4, baseMs: 100, maxMs: 1000 };

/** The shape of an error the SDK throws for an S3 answer. */
function s3Error(name: string, status: number): Error {
  return Object.assign(new Error(`${name} from server`), { name, $metadata: { httpStatusCode: status } });
}
function errno(code: string, message = `connect ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

describe('backoffDelay (request policy)', () => {
  test('full jitter: the random draw scales the window, which doubles per retry', () => {
    assert.equal(
      backoffDelay(policy, 1, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(policy, 1, () => 0.5),
      50,
    );
    assert.equal(
      backoffDelay(policy, 2, () => 0.5),
      100,
    );
    assert.equal(
      backoffDelay(policy, 3, () => 0.5),
      200,
    );
    assert.equal(
      backoffDelay(policy, 4, () => 0.999),
      799,
    );
  });

  test('the window stops growing at maxDelayMs', () => {
    assert.equal(
      backoffDelay(policy, 5, () => 0.5),
      500,
    );
    assert.equal(
      backoffDelay(policy, 60, () => 0.5),
      500,
    );
    assert.equal(
      backoffDelay(policy, 10_000, () => 0.999),
      999,
    );
  });

  test('stays within [0, min(cap, base * 2^(retry-1))) for any draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (retry, r) => {
          const d = backoffDelay(BACKOFF.request, retry, () => r);
          const ceiling = Math.min(BACKOFF.request.maxMs, BACKOFF.request.baseMs * 2 ** (retry - 1));
          return Number.isInteger(d) && d >= 0 && d < ceiling;
        },
      ),
    );
  });
});

describe('classifyFailure', () => {
  const cases: Array<[string, unknown, string]> = [
    ['503 SlowDown', s3Error('SlowDown', 503), 'throttling'],
    ['429 without a code', s3Error('Unknown', 429), 'throttling'],
    ['throttling code on a 400', s3Error('ThrottlingException', 400), 'throttling'],
    ['500 InternalError', s3Error('InternalError', 500), 'server'],
    ['502 from a gateway', s3Error('Unknown', 502), 'server'],
    ['503 without a code (HEAD): throttling, as Nix 2.35 treats it', s3Error('503', 503), 'throttling'],
    ['ECONNRESET', errno('ECONNRESET'), 'network'],
    ['EPIPE', errno('EPIPE'), 'network'],
    ['ECONNREFUSED', errno('ECONNREFUSED'), 'network'],
    ['ENOTFOUND', errno('ENOTFOUND'), 'network'],
    ['socket hang up', new Error('socket hang up'), 'network'],
    ['ETIMEDOUT', errno('ETIMEDOUT'), 'timeout'],
    ['SDK TimeoutError', Object.assign(new Error('took too long'), { name: 'TimeoutError' }), 'timeout'],
    ['a reset wrapped as the cause', new Error('request failed', { cause: errno('ECONNRESET') }), 'network'],
    ['403 AccessDenied', s3Error('AccessDenied', 403), 'fatal'],
    ['403 SignatureDoesNotMatch', s3Error('SignatureDoesNotMatch', 403), 'fatal'],
    ['404 NotFound', s3Error('NotFound', 404), 'fatal'],
    ['404 NoSuchBucket', s3Error('NoSuchBucket', 404), 'fatal'],
    ['400 InvalidArgument', s3Error('InvalidArgument', 400), 'fatal'],
    ['501 NotImplemented (an operation the server lacks)', s3Error('NotImplemented', 501), 'fatal'],
    [
      'a 403 whose cause looks retryable stays fatal',
      Object.assign(s3Error('AccessDenied', 403), { cause: errno('ECONNRESET') }),
      'fatal',
    ],
    ['AbortError', Object.assign(new Error('aborted'), { name: 'AbortError' }), 'fatal'],
    ['a plain Error', new Error('boom'), 'fatal'],
    ['not an object', 'ECONNRESET', 'fatal'],
    ['undefined', undefined, 'fatal'],
  ];
  for (const [name, err, expected] of cases) {
    test(name, () => {
      assert.equal(classifyFailure(err), expected);
      assert.equal(isRetryable(err), expected !== 'fatal');
    });
  }
});

describe('createRetryStrategy (the SDK RetryStrategyV2 shape)', () => {
  test('retries a retryable failure until maxAttempts, with jittered delays', async () => {
    const notices: RetryNotice[] = [];
    const strategy = createRetryStrategy(
      policy,
      () => 0.5,
      (n) => notices.push(n),
    );
    let token = await strategy.acquireInitialRetryToken('scope');
    assert.equal(token.getRetryCount(), 0);
    const delays: number[] = [];
    for (let i = 1; i < policy.maxAttempts; i++) {
      token = await strategy.refreshRetryTokenForRetry(token, { error: s3Error('InternalError', 500) });
      assert.equal(token.getRetryCount(), i);
      delays.push(token.getRetryDelay());
    }
    assert.deepEqual(delays, [50, 100, 200]);
    await assert.rejects(strategy.refreshRetryTokenForRetry(token, { error: s3Error('InternalError', 500) }));
    assert.deepEqual(
      notices.map((n) => [n.retry, n.kind, n.code]),
      [
        [1, 'server', 'InternalError'],
        [2, 'server', 'InternalError'],
        [3, 'server', 'InternalError'],
      ],
    );
  });

  test('gives up at once on a fatal failure', async () => {
    const notices: RetryNotice[] = [];
    const strategy = createRetryStrategy(
      policy,
      () => 0.5,
      (n) => notices.push(n),
    );
    const token = await strategy.acquireInitialRetryToken('');
    await assert.rejects(strategy.refreshRetryTokenForRetry(token, { error: s3Error('AccessDenied', 403) }));
    await assert.rejects(strategy.refreshRetryTokenForRetry(token, {}));
    assert.equal(notices.length, 0);
  });

  test('maxAttempts 1 never retries', async () => {
    const strategy = createRetryStrategy({ ...policy, maxAttempts: 1 });
    const token = await strategy.acquireInitialRetryToken('');
    await assert.rejects(strategy.refreshRetryTokenForRetry(token, { error: errno('ECONNRESET') }));
  });
});

describe('Retry-After and throttled answers (Nix 2.35: a floor, full jitter above it)', () => {
  /** An SDK error whose raw answer carried headers, as the deserializer leaves it. */
  function answered(name: string, status: number, headers: Record<string, string>): Error {
    return Object.assign(s3Error(name, status), { $response: { statusCode: status, headers } });
  }
  const now = Date.parse('2026-12-06T12:00:00Z');

  test('parseRetryAfter reads delay-seconds and HTTP-dates, and nothing else', () => {
    assert.equal(parseRetryAfter('2', now), 2000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter('1.5', now), 1500);
    assert.equal(parseRetryAfter('Sun, 06 Dec 2026 12:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter('Sun, 06 Dec 2026 11:00:00 GMT', now), 0, 'a date in the past: now');
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter('-3', now), undefined);
    assert.equal(parseRetryAfter('', now), undefined);
  });

  test('a 503 or 429 with Retry-After waits at least that long, jitter on top', async () => {
    for (const [status, code] of [
      [503, 'SlowDown'],
      [429, 'TooManyRequests'],
      [503, '503'],
    ] as const) {
      for (const r of [0, 0.5, 0.999]) {
        const strategy = createRetryStrategy(policy, () => r, undefined, { now: () => now });
        const token = await strategy.acquireInitialRetryToken('');
        const next = await strategy.refreshRetryTokenForRetry(token, {
          error: answered(code, status, { 'Retry-After': '2' }),
        });
        assert.ok(next.getRetryDelay() >= 2000, `${status} ${code} r=${r}: ${next.getRetryDelay()}`);
        assert.ok(next.getRetryDelay() <= 2000 + BACKOFF.throttled.baseMs);
      }
    }
    const strategy = createRetryStrategy(policy, () => 0, undefined, { now: () => now });
    const dated = await strategy.refreshRetryTokenForRetry(await strategy.acquireInitialRetryToken(''), {
      error: answered('SlowDown', 503, { 'retry-after': 'Sun, 06 Dec 2026 12:00:07 GMT' }),
    });
    assert.equal(dated.getRetryDelay(), 7000);
  });

  test('a throttled answer without Retry-After backs off on the throttled policy', async () => {
    const strategy = createRetryStrategy(policy, () => 0.5);
    let token = await strategy.acquireInitialRetryToken('');
    const delays: number[] = [];
    for (let i = 1; i < policy.maxAttempts; i++) {
      token = await strategy.refreshRetryTokenForRetry(token, { error: s3Error('SlowDown', 503) });
      delays.push(token.getRetryDelay());
    }
    assert.deepEqual(delays, [500, 1000, 2000]);
  });

  test('a Retry-After beyond ten minutes is not waited for', async () => {
    const strategy = createRetryStrategy(policy, () => 0.5, undefined, { now: () => now });
    const token = await strategy.acquireInitialRetryToken('');
    await assert.rejects(
      strategy.refreshRetryTokenForRetry(token, {
        error: answered('SlowDown', 503, { 'retry-after': '3600' }),
      }),
    );
  });
});
