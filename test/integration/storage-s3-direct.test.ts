// Small S3 requests sent without the SDK's middleware stack (src/storage/s3-direct.ts) against
// real servers: s3rver (in-process, behind the recording proxy) and moto, which honours
// conditional writes. Each case runs through both ways, the direct one and the SDK's commands
// (`directRequests: false`), and asserts they agree. Signing, extra headers, retries, throttling
// and error mapping on this path are also covered by storage-s3-auth.test.ts and
// storage-s3-throttle.test.ts, whose small requests now go the direct way.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { StorageError } from '../../src/errors.js';
import { CONTENT_TYPE_NARINFO } from '../../src/format/bucket-layout.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { motoMissing, startMotoServer } from '../helpers/moto-server.js';
import {
  s3ErrorXml,
  startForwardingProxy,
  startS3Server,
  storeOptionsFor,
  type TestS3,
} from '../helpers/s3-server.js';
import { skipOption } from '../helpers/skip.js';

const external = Boolean(process.env.LOFT_TEST_S3_ENDPOINT);
const needsRecording = external
  ? skipOption('in-process-s3', 'needs the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)')
  : false;
const WAYS = [
  { name: 'direct', directRequests: true },
  { name: 'SDK', directRequests: false },
];
const KEYS = ['plain.narinfo', 'log/a b+c(1)', "odd/!'*~:@,;=$&", 'ünï/cödé/€.narinfo'];

function storeFor(
  s3: TestS3,
  directRequests: boolean,
  extra: Partial<ConstructorParameters<typeof S3ObjectStore>[0]> = {},
) {
  return new S3ObjectStore({
    ...storeOptionsFor(s3),
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 5,
    directRequests,
    ...extra,
  });
}

/** An anonymous GET straight from s3rver, for the headers it stored with the object. */
function fetchHeaders(s3: TestS3, key: string): Promise<http.IncomingHttpHeaders> {
  const url = `${s3.backend}/${s3.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve(res.headers) : reject(new Error(`${res.statusCode}`)),
        );
      })
      .on('error', reject);
  });
}

describe('small requests on s3rver, direct and through the SDK', { skip: needsRecording }, () => {
  let s3: TestS3;
  before(async () => {
    s3 = await startS3Server();
  });
  after(async () => {
    await s3.close();
  });

  test('the direct way sends one request per call and none of the SDK per-request headers', async () => {
    const direct = storeFor(s3, true);
    const sdk = storeFor(s3, false);
    try {
      const calls = async (store: S3ObjectStore, key: string) => {
        const mark = s3.requests.length;
        await store.putBytes(key, 'x', { contentType: CONTENT_TYPE_NARINFO });
        await store.head(key);
        await store.get(key);
        await store.head(`${key}.missing`);
        return s3.requests.slice(mark);
      };
      const viaDirect = await calls(direct, 'way/direct');
      const viaSdk = await calls(sdk, 'way/sdk');
      assert.deepEqual(
        viaDirect.map((r) => r.method),
        ['PUT', 'HEAD', 'GET', 'HEAD'],
        'the route probe itself sends nothing',
      );
      for (const r of viaDirect) assert.equal(r.headers['amz-sdk-invocation-id'], undefined);
      for (const r of viaSdk)
        assert.ok(r.headers['amz-sdk-invocation-id'], 'the SDK way does go through its stack');
      // The same signed headers apart from the SDK's retry bookkeeping.
      const signed = (r: (typeof viaDirect)[number]) =>
        /SignedHeaders=([^,]+)/
          .exec(String(r.headers.authorization))?.[1]
          ?.split(';')
          .filter((h) => !h.startsWith('amz-sdk-'));
      assert.deepEqual(viaDirect.map(signed), viaSdk.map(signed));
    } finally {
      await direct.close();
      await sdk.close();
    }
  });

  test('keys with odd characters: what one way writes the other reads, under the same name', async () => {
    const direct = storeFor(s3, true);
    const sdk = storeFor(s3, false);
    try {
      for (const [writer, reader] of [
        [direct, sdk],
        [sdk, direct],
      ] as const) {
        const prefix = writer === direct ? 'odd-direct/' : 'odd-sdk/';
        for (const key of KEYS) await writer.putBytes(prefix + key, key, { contentType: 'text/plain' });
        for (const key of KEYS) {
          assert.equal((await reader.get(prefix + key))?.toString(), key, prefix + key);
          assert.equal((await reader.head(prefix + key))?.size, Buffer.byteLength(key));
        }
        const listed: string[] = [];
        for await (const o of reader.list(prefix)) listed.push(o.key.slice(prefix.length));
        assert.deepEqual(listed.sort(), [...KEYS].sort());
      }
    } finally {
      await direct.close();
      await sdk.close();
    }
  });

  for (const way of WAYS) {
    test(`${way.name}: content type and encoding are stored; head and get agree on size and ETag`, async () => {
      const store = storeFor(s3, way.directRequests);
      try {
        const key = `meta-${way.name}/log`;
        let etag: string | undefined;
        await store.putBytes(key, Buffer.from('compressed log'), {
          contentType: 'text/plain; charset=utf-8',
          contentEncoding: 'zstd',
          onEtag: (e) => (etag = e),
        });
        const headers = await fetchHeaders(s3, key);
        assert.equal(headers['content-type'], 'text/plain; charset=utf-8');
        assert.equal(headers['content-encoding'], 'zstd');
        const info = await store.head(key);
        assert.equal(info?.size, 14);
        assert.ok(etag && info?.etag === etag);
        assert.ok(info.lastModified.getTime() > Date.now() - 3_600_000);
        const tagged = await store.getTagged(key);
        assert.equal(tagged?.etag, etag);
        assert.equal(await store.get(`${key}.absent`), undefined);
        assert.equal(await store.head(`${key}.absent`), undefined);
      } finally {
        await store.close();
      }
    });
  }

  for (const way of WAYS) {
    test(`${way.name}: answers that are not S3's XML (a proxy's page) keep their status`, async () => {
      const page = { 'content-type': 'text/html' };
      let puts = 0;
      const front = await startForwardingProxy(s3.endpoint, (req) => {
        const put = req.method === 'PUT' ? ++puts : 0;
        if (put === 1) return { respond: { status: 502, headers: page, body: '<html>bad gateway' } };
        if (put === 3) return { respond: { status: 404, headers: page, body: '<html>no' } };
        if (req.method === 'GET')
          return { respond: { status: 404, headers: page, body: '<html>no such page' } };
        return undefined;
      });
      const store = storeFor(s3, way.directRequests, { endpoint: front.endpoint });
      try {
        await store.putBytes('page/a', 'a', { contentType: 'text/plain' });
        await assert.rejects(store.putBytes('page/b', 'b', { contentType: 'text/plain' }), (err) => {
          assert.ok(err instanceof StorageError && err.code === 'E_STORAGE', String(err));
          assert.match(err.message, /put page\/b on bucket .* got HTTP 404/);
          return true;
        });
        assert.equal(await store.get('page/a'), undefined, 'a 404 page reads as absent');
        assert.equal(puts, 3, 'the 502 was retried, the 404 not');
      } finally {
        await store.close();
        await front.close();
      }
    });
  }

  for (const way of WAYS) {
    test(`${way.name}: a server whose clock is an hour ahead is believed after its first refusal`, async () => {
      // Plays S3's check of X-Amz-Date (15 minutes either way) against a server clock an hour
      // ahead, answering every request itself with that clock in its Date header.
      const serverNow = () => Date.now() + 3_600_000;
      const dated = (status: number, body = '') => ({
        respond: {
          status,
          headers: { date: new Date(serverNow()).toUTCString(), 'content-type': 'application/xml' },
          body,
        },
      });
      const skewed = await startForwardingProxy(s3.endpoint, (req) => {
        const stamp = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(
          String(req.headers['x-amz-date']),
        );
        const signedAt = stamp
          ? Date.UTC(+stamp[1]!, +stamp[2]! - 1, +stamp[3]!, +stamp[4]!, +stamp[5]!, +stamp[6]!)
          : 0;
        if (Math.abs(signedAt - serverNow()) > 15 * 60_000)
          return dated(403, s3ErrorXml('RequestTimeTooSkewed', 'skewed'));
        return dated(200);
      });
      const store = storeFor(s3, way.directRequests, { endpoint: skewed.endpoint, maxAttempts: 1 });
      try {
        await assert.rejects(store.putBytes('skew/a', 'a', { contentType: 'text/plain' }), (err) => {
          assert.ok(err instanceof StorageError && err.code === 'E_STORAGE_AUTH', String(err));
          return true;
        });
        await store.putBytes('skew/a', 'a', { contentType: 'text/plain' });
        assert.ok(await store.head('skew/a'), 'later requests are signed with the server clock');
        assert.equal(skewed.requests.length, 3);
      } finally {
        await store.close();
        await skewed.close();
      }
    });
  }
});

describe('small requests on moto, direct and through the SDK', { skip: motoMissing() ?? false }, () => {
  let moto: TestS3;
  before(async () => {
    moto = await startMotoServer();
  });
  after(async () => {
    await moto.close();
  });

  for (const way of WAYS) {
    test(`${way.name}: a conditional create writes once and then reports the key taken (412)`, async () => {
      const store = storeFor(moto, way.directRequests, { maxAttempts: 1 });
      try {
        const key = `lease-${way.name}`;
        const mark = moto.requests.length;
        assert.equal(await store.createExclusive(key, 'first', { contentType: 'application/json' }), true);
        assert.equal(await store.createExclusive(key, 'second', { contentType: 'application/json' }), false);
        assert.equal((await store.get(key))?.toString(), 'first');
        const puts = moto.requests.slice(mark).filter((r) => r.method === 'PUT');
        assert.deepEqual(
          puts.map((r) => r.headers['if-none-match']),
          ['*', '*'],
        );
        assert.equal(await store.get(`${key}.absent`), undefined);
        assert.equal(await store.head(`${key}.absent`), undefined);
      } finally {
        await store.close();
      }
    });
  }

  for (const way of WAYS) {
    test(`${way.name}: a missing bucket is E_STORAGE_NO_BUCKET for put and get`, async () => {
      const store = storeFor(moto, way.directRequests, { bucket: 'loft-no-such-bucket', maxAttempts: 1 });
      try {
        await assert.rejects(store.putBytes('k', 'v', { contentType: 'text/plain' }), {
          code: 'E_STORAGE_NO_BUCKET',
        });
        await assert.rejects(store.get('k'), { code: 'E_STORAGE_NO_BUCKET' });
      } finally {
        await store.close();
      }
    });
  }
});
