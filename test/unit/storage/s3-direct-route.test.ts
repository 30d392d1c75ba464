// What the route probe learns from the SDK (src/storage/s3-direct-route.ts), with real S3 clients
// and no network: the probe stops before anything is sent.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { S3Client } from '@aws-sdk/client-s3';
import { RequestLimiter } from '../../../src/storage/request-limiter.js';
import { createRetryStrategy } from '../../../src/storage/retry.js';
import { createS3Transport } from '../../../src/storage/s3-client.js';
import { S3DirectRequests } from '../../../src/storage/s3-direct.js';
import { learnDirectRoute } from '../../../src/storage/s3-direct-route.js';

const credentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};

function clientFor(options: { endpoint?: string; region: string; forcePathStyle: boolean }): S3Client {
  return createS3Transport({ ...options, credentials, extraHeaders: {} }).client;
}

describe('learnDirectRoute', () => {
  const cases = [
    {
      what: 'an S3 clone, path-style',
      client: { endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true },
      bucket: 'cache',
      want: {
        protocol: 'http:',
        hostname: '127.0.0.1',
        port: 9000,
        pathPrefix: '/cache/',
        host: '127.0.0.1:9000',
      },
    },
    {
      what: 'an endpoint with a base path',
      client: { endpoint: 'https://store.example.org/s3/', region: 'auto', forcePathStyle: true },
      bucket: 'cache',
      want: { protocol: 'https:', hostname: 'store.example.org', pathPrefix: '/s3/cache/' },
    },
    {
      what: 'AWS, virtual-hosted',
      client: { region: 'eu-west-1', forcePathStyle: false },
      bucket: 'cache',
      want: { protocol: 'https:', hostname: 'cache.s3.eu-west-1.amazonaws.com', pathPrefix: '/' },
    },
    {
      what: 'AWS, a dotted bucket over TLS falls back to path-style',
      client: { region: 'eu-west-1', forcePathStyle: false },
      bucket: 'my.cache',
      want: { protocol: 'https:', hostname: 's3.eu-west-1.amazonaws.com', pathPrefix: '/my.cache/' },
    },
  ];
  for (const c of cases) {
    test(c.what, async () => {
      const client = clientFor(c.client);
      const route = await learnDirectRoute(client, c.bucket);
      assert.ok(route, 'a plain SigV4 bucket has a route');
      assert.equal(route.protocol, c.want.protocol);
      assert.equal(route.hostname, c.want.hostname);
      assert.equal(route.port, c.want.port);
      assert.equal(route.pathPrefix, c.want.pathPrefix);
      assert.equal(route.headers.host, c.want.host ?? c.want.hostname);
      assert.match(route.headers['user-agent'] ?? '', /aws-sdk-js/);
      assert.equal(route.signingName, 's3');
      assert.equal(route.signingRegion, c.client.region === 'auto' ? 'auto' : c.client.region);
      client.destroy();
    });
  }

  test('an S3 Express bucket (its own auth scheme) has no route: the SDK sends its requests', async () => {
    const client = clientFor({ region: 'us-east-1', forcePathStyle: false });
    assert.equal(await learnDirectRoute(client, 'cache--use1-az4--x-s3'), undefined);
    client.destroy();
  });

  test('a multi-region access point (SigV4a) has no route', async () => {
    const client = clientFor({ region: 'us-east-1', forcePathStyle: false });
    const mrap = 'arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap';
    assert.equal(await learnDirectRoute(client, mrap), undefined);
    client.destroy();
  });

  test("an error answer becomes the SDK's own modelled error, the answer hidden on it", async () => {
    const client = clientFor({
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      forcePathStyle: true,
    });
    const route = (await learnDirectRoute(client, 'cache'))!;
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>gone</Message>' +
      '<RequestId>r1</RequestId></Error>';
    const headers = { 'content-type': 'application/xml', 'retry-after': '3' };
    const err = (await route.errorOf('GetObject', { statusCode: 404, headers, body: Buffer.from(xml) })) as {
      name: string;
      $metadata: { httpStatusCode: number };
      $response: { headers: Record<string, string> };
    };
    assert.equal(err.name, 'NoSuchKey');
    assert.equal(err.$metadata.httpStatusCode, 404);
    assert.equal(err.$response.headers['retry-after'], '3', 'Retry-After stays readable (retry.ts)');
    assert.ok(!Object.keys(err).includes('$response'), 'not enumerable, as the SDK leaves it');
    const head = (await route.errorOf('HeadObject', {
      statusCode: 404,
      headers: {},
      body: Buffer.alloc(0),
    })) as {
      name: string;
    };
    assert.equal(head.name, 'NotFound', 'a HEAD answer has no body: the status names it');
    const page = (await route.errorOf('PutObject', {
      statusCode: 502,
      headers: { 'x-amz-request-id': 'r2' },
      body: Buffer.from('<html>bad gateway'),
    })) as { $metadata: { httpStatusCode: number; requestId: string } };
    assert.equal(page.$metadata.httpStatusCode, 502, "a page that is not S3's XML keeps its status");
    assert.equal(page.$metadata.requestId, 'r2');
    client.destroy();
  });
});

describe('S3DirectRequests.route', () => {
  test('a probe that failed (no credentials yet) is not kept: the next request probes again', async () => {
    let calls = 0;
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      credentials: () =>
        calls++ === 0 ? Promise.reject(new Error('no credentials yet')) : Promise.resolve(credentials),
    });
    const policy = { baseMs: 1, factor: 2, maxMs: 2, jitterFloor: 0, maxAttempts: 1 };
    const direct = new S3DirectRequests(
      { client, limiter: new RequestLimiter(), retryStrategy: createRetryStrategy(policy), extraHeaders: {} },
      'cache',
    );
    assert.equal(await direct.route(), undefined);
    const route = await direct.route();
    assert.equal(route?.pathPrefix, '/cache/');
    assert.equal(await direct.route(), route, 'kept once learnt');
    client.destroy();
  });
});
