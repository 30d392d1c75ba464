// The direct small-request path's own work (src/storage/s3-direct.ts): the retry loop with loft's
// strategy, the limiter's places, signing before the extra headers, the body read inside the
// attempt, S3's error-in-a-200, the clock-skew bookkeeping. The route is a hand-written stand-in
// of DirectRoute (our interface); the SDK's parts it stands for are tested against real servers in
// test/integration/storage-s3-direct.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { RequestLimiter } from '../../../src/storage/request-limiter.js';
import { createRetryStrategy } from '../../../src/storage/retry.js';
import { encodeKey, S3DirectRequests, type S3Transport } from '../../../src/storage/s3-direct.js';
import type { DirectRoute, WireRequest, WireResponse } from '../../../src/storage/s3-direct-route.js';
import type { S3Client } from '@aws-sdk/client-s3';

type Answer = WireResponse | Error;

interface Recorded {
  /** What the signer was given. */
  toSign: WireRequest[];
  signOptions: Record<string, unknown>[];
  /** What the handler was given (signed, extra headers added). */
  sent: WireRequest[];
  errorProperties: Record<string, unknown>[];
  successes: number;
}

function answer(status: number, body = '', headers: Record<string, string> = {}): WireResponse {
  return { statusCode: status, headers: { 'content-length': String(body.length), ...headers }, body: body };
}

/** A route whose handler gives `answers` in turn (bodies become streams as Node's would be). */
function fakeRoute(answers: Answer[], clockOffset = 0): { route: DirectRoute; seen: Recorded } {
  const seen: Recorded = { toSign: [], signOptions: [], sent: [], errorProperties: [], successes: 0 };
  const config = {
    systemClockOffset: clockOffset,
    signer: () => Promise.reject(new Error('not used')),
    protocol: { deserializeResponse: () => Promise.reject(new Error('not used')) },
    requestHandler: {
      handle(request: WireRequest): Promise<{ response: WireResponse }> {
        seen.sent.push(request);
        const next = answers.shift() ?? new Error('no more answers');
        if (next instanceof Error) return Promise.reject(next);
        const body = Readable.from([Buffer.from(next.body as string)].filter((b) => b.length > 0));
        return Promise.resolve({ response: { ...next, body } });
      },
    },
  };
  const route: DirectRoute = {
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 9000,
    pathPrefix: '/cache/',
    headers: { host: '127.0.0.1:9000', 'user-agent': 'sdk-ua' },
    signer: {
      sign(request, options) {
        const { body: _body, ...rest } = request;
        seen.toSign.push(structuredClone(rest));
        seen.signOptions.push(options);
        return Promise.resolve({ ...request, headers: { ...request.headers, authorization: 'AWS4 signed' } });
      },
    },
    signingRegion: 'eu-central-1',
    signingName: 's3',
    skewCorrection: true,
    config,
    schemeSigner: {
      successHandler: () => void seen.successes++,
      errorHandler: (properties) => (error) => {
        seen.errorProperties.push(properties);
        throw error;
      },
    },
    errorOf: (_command, response) =>
      Promise.resolve(
        Object.assign(new Error('from the deserializer'), {
          name: response.statusCode === 503 ? 'SlowDown' : 'AccessDenied',
          $metadata: { httpStatusCode: response.statusCode },
          $response: response,
        }),
      ),
  };
  return { route, seen };
}

function transport(limiter = new RequestLimiter(), maxAttempts = 3): S3Transport {
  const policy = { baseMs: 1, factor: 2, maxMs: 2, jitterFloor: 0, maxAttempts };
  return {
    client: {} as S3Client,
    limiter,
    retryStrategy: createRetryStrategy(policy, () => 0.5, undefined, { throttled: policy }),
    extraHeaders: { 'CF-Access-Client-Secret': 'unsigned-value' },
  };
}

const reset = (): Error => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

describe('S3DirectRequests.send', () => {
  test('signs with the route, then adds the extra headers unsigned; one attempt, one place', async () => {
    const { route, seen } = fakeRoute([answer(200, '', { etag: '"abc"' })], 60_000);
    const limiter = new RequestLimiter();
    const direct = new S3DirectRequests(transport(limiter), 'cache');
    const body = Buffer.from('StorePath: /nix/store/x');
    const before = Date.now();
    const out = await direct.send(route, {
      command: 'PutObject',
      key: 'pre/a b+c.narinfo',
      headers: { 'content-type': 'text/x-nix-narinfo' },
      body,
    });
    assert.equal(out.headers.etag, '"abc"');
    const [signed] = seen.toSign;
    assert.equal(signed?.method, 'PUT');
    assert.equal(signed?.path, '/cache/pre/a%20b%2Bc.narinfo');
    assert.equal(signed?.headers['content-length'], String(body.length));
    assert.equal(signed?.headers['content-type'], 'text/x-nix-narinfo');
    assert.equal(signed?.headers.host, '127.0.0.1:9000');
    assert.equal(signed?.headers['cf-access-client-secret'], undefined, 'extra headers are not signed');
    assert.equal(seen.sent[0]?.headers['cf-access-client-secret'], 'unsigned-value');
    assert.equal(seen.sent[0]?.headers.authorization, 'AWS4 signed');
    const options = seen.signOptions[0]!;
    assert.equal(options.signingRegion, 'eu-central-1');
    assert.equal(options.signingService, 's3');
    // The clock offset the SDK learnt from earlier answers corrects the signing date.
    assert.ok((options.signingDate as Date).getTime() >= before + 60_000);
    assert.equal(seen.successes, 1);
    assert.equal(limiter.inFlight, 0);
  });

  test('a reset and a 503 are retried; the 503 counts as throttling for the limiter', async () => {
    const { route, seen } = fakeRoute([
      reset(),
      answer(503, '<Error><Code>SlowDown</Code></Error>'),
      answer(200),
    ]);
    const limiter = new RequestLimiter();
    await new S3DirectRequests(transport(limiter), 'cache').send(route, {
      command: 'HeadObject',
      key: 'a.narinfo',
      headers: {},
    });
    assert.equal(seen.sent.length, 3);
    assert.equal(limiter.throttles, 1);
    assert.equal(limiter.inFlight, 0);
    // Every failed attempt went through the signer's error handler with its skew bookkeeping.
    assert.equal(seen.errorProperties.length, 2);
    assert.equal(seen.errorProperties[0]?._preRequestSystemClockOffset, 0);
    assert.equal(typeof seen.errorProperties[0]?._requestSentAt, 'number');
  });

  test('gives up after the allowed attempts with the last error, attempts counted', async () => {
    const { route, seen } = fakeRoute([reset(), reset(), reset(), answer(200)]);
    await assert.rejects(
      new S3DirectRequests(transport(), 'cache').send(route, { command: 'GetObject', key: 'k', headers: {} }),
      (err: { code?: string; $metadata?: { attempts?: number } }) => {
        assert.equal(err.code, 'ECONNRESET');
        assert.equal(err.$metadata?.attempts, 3);
        return true;
      },
    );
    assert.equal(seen.sent.length, 3);
  });

  test("a 403 is the deserializer's error, not retried", async () => {
    const { route, seen } = fakeRoute([answer(403, '<Error><Code>AccessDenied</Code></Error>')]);
    await assert.rejects(
      new S3DirectRequests(transport(), 'cache').send(route, {
        command: 'HeadObject',
        key: 'k',
        headers: {},
      }),
      (err: { name?: string; $metadata?: { httpStatusCode?: number; attempts?: number } }) => {
        assert.equal(err.name, 'AccessDenied');
        assert.equal(err.$metadata?.httpStatusCode, 403);
        assert.equal(err.$metadata?.attempts, 1);
        return true;
      },
    );
    assert.equal(seen.sent.length, 1);
  });

  test('a PUT answered 200 with an error document is a 503 and retried (S3 fails late so)', async () => {
    const late = '<?xml version="1.0"?><Error><Code>InternalError</Code></Error>';
    const { route, seen } = fakeRoute([answer(200, late), answer(200)]);
    const limiter = new RequestLimiter();
    const body = Buffer.from('x');
    await new S3DirectRequests(transport(limiter), 'cache').send(route, {
      command: 'PutObject',
      key: 'k',
      headers: {},
      body,
    });
    assert.equal(seen.sent.length, 2);
    assert.equal(limiter.throttles, 1, 'read as the 503 it stands for');
  });

  test('a GET whose body ends short of its Content-Length is retried', async () => {
    const short = answer(200, 'only half');
    short.headers['content-length'] = '18';
    const { route, seen } = fakeRoute([short, answer(200, 'the whole narinfo!')]);
    const out = await new S3DirectRequests(transport(), 'cache').send(route, {
      command: 'GetObject',
      key: 'k',
      headers: {},
    });
    assert.equal(out.body.toString(), 'the whole narinfo!');
    assert.equal(seen.sent.length, 2);
  });

  test('an abort during the wait before a retry ends it at once with an AbortError', async () => {
    const { route } = fakeRoute([reset(), answer(200)]);
    const t = transport();
    const slow = { baseMs: 60_000, factor: 1, maxMs: 60_000, jitterFloor: 1, maxAttempts: 3 };
    t.retryStrategy = createRetryStrategy(slow, () => 1, undefined, { throttled: slow });
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(
      new S3DirectRequests(t, 'cache').send(route, {
        command: 'HeadObject',
        key: 'k',
        headers: {},
        signal: controller.signal,
      }),
      { name: 'AbortError' },
    );
    assert.ok(Date.now() - started < 5_000);
  });
});

describe('encodeKey (the SDK serializer for a greedy label, /{Key+})', () => {
  const cases: [string, string][] = [
    ['abc.narinfo', 'abc.narinfo'],
    ['nar/x-y_z~1.nar.zst', 'nar/x-y_z~1.nar.zst'],
    ['log/a b+c', 'log/a%20b%2Bc'],
    ["a!b'c(d)e*f", 'a%21b%27c%28d%29e%2Af'],
    ['realisations/sha256:ab!out.doi', 'realisations/sha256%3Aab%21out.doi'],
    ['ü/€', '%C3%BC/%E2%82%AC'],
    ['a//b/', 'a//b/'],
    ['%41?#&=', '%2541%3F%23%26%3D'],
  ];
  for (const [key, path] of cases) test(JSON.stringify(key), () => assert.equal(encodeKey(key), path));
});
