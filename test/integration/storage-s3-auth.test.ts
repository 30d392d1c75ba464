// Signing, unsigned extra headers, and failures that must map to clear errors: checked through
// proxies in front of s3rver (it verifies nothing itself). Needs the in-process s3rver: a proxy
// cannot forward to an external endpoint without breaking the signature over its Host header.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closedPort } from '../helpers/closed-port.js';
import { PassThrough } from 'node:stream';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { StorageError } from '../../src/errors.js';
import { CONTENT_TYPE_NAR, CONTENT_TYPE_NARINFO } from '../../src/format/bucket-layout.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import {
  s3ErrorXml,
  startForwardingProxy,
  startS3Server,
  storeOptionsFor,
  type TestS3,
} from '../helpers/s3-server.js';
import { startSigV4Proxy, type SigV4Proxy } from '../helpers/sigv4-proxy.js';
import { skipOption } from '../helpers/skip.js';

const external = Boolean(process.env.LOFT_TEST_S3_ENDPOINT);
const skip = external
  ? skipOption('in-process-s3', 'needs the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)')
  : false;
const ACCESS_HEADERS = {
  'CF-Access-Client-Id': 'id-7f3a.access',
  'CF-Access-Client-Secret': 'header-secret-91b2',
};
const fast = { retryBaseDelayMs: 1, retryMaxDelayMs: 5 };

let s3: TestS3;
let proxy: SigV4Proxy;
const open: S3ObjectStore[] = [];

function storeVia(
  endpoint: string,
  extra: Partial<ConstructorParameters<typeof S3ObjectStore>[0]> = {},
): S3ObjectStore {
  const store = new S3ObjectStore({ ...storeOptionsFor(s3), ...fast, endpoint, ...extra });
  open.push(store);
  return store;
}

function storageError(code: string, forbidden: string[] = []) {
  return (err: unknown) => {
    assert.ok(err instanceof StorageError, `expected StorageError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const f of forbidden) assert.ok(!err.message.includes(f), `message leaks ${f}: ${err.message}`);
    return true;
  };
}

describe('S3 through a SigV4-verifying proxy', { skip }, () => {
  before(async () => {
    s3 = await startS3Server();
    proxy = await startSigV4Proxy({
      target: s3.endpoint, // through the recording proxy, to see what reaches the server
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      region: s3.region,
      requiredHeaders: ACCESS_HEADERS,
    });
  });
  after(async () => {
    for (const store of open) await store.close();
    await proxy.close();
    await s3.close();
  });

  test('every operation is correctly signed; extra headers are sent, unsigned, and stripped', async () => {
    const store = storeVia(proxy.endpoint, { extraHeaders: ACCESS_HEADERS });
    const mark = proxy.seen.length;
    await store.checkAccess();
    await store.putBytes('sig/a.narinfo', 'a', { contentType: CONTENT_TYPE_NARINFO });
    const big = new PassThrough();
    big.end(Buffer.alloc(11 * 1024 * 1024, 0x5a));
    await store.putStream('sig/b.nar', big, { contentType: CONTENT_TYPE_NAR });
    assert.equal((await store.head('sig/a.narinfo'))?.size, 1);
    assert.equal((await store.get('sig/b.nar'))?.length, 11 * 1024 * 1024);
    const listed: string[] = [];
    for await (const o of store.list('sig/')) listed.push(o.key);
    assert.deepEqual(listed.sort(), ['sig/a.narinfo', 'sig/b.nar']);
    await store.deleteMany(['sig/a.narinfo']);

    const seen = proxy.seen.slice(mark);
    assert.ok(seen.length >= 10, `only ${seen.length} requests seen`);
    for (const r of seen) {
      assert.equal(r.verdict, 'ok', `${r.method} ${r.url}`);
      assert.deepEqual(r.extraHeaders, ACCESS_HEADERS);
      for (const name of Object.keys(ACCESS_HEADERS))
        assert.ok(!r.signedHeaders.includes(name.toLowerCase()));
      assert.ok(r.signedHeaders.includes('host') && r.signedHeaders.includes('x-amz-date'));
    }
    const reached = s3.requests.filter((r) => r.key.startsWith('sig/'));
    assert.ok(reached.length > 0);
    for (const r of reached)
      assert.equal(r.headers['cf-access-client-id'], undefined, 'stripped by the proxy');
  });

  test('the proxy does catch a header that was signed (so the test above can fail)', async () => {
    const client = new S3Client({
      region: s3.region,
      endpoint: proxy.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      maxAttempts: 1,
    });
    // Added in the build step, i.e. before signing: the header ends up in SignedHeaders.
    client.middlewareStack.add(
      (next) => (args) => {
        const req = args.request as { headers: Record<string, string> };
        Object.assign(req.headers, ACCESS_HEADERS);
        return next(args);
      },
      { step: 'build', name: 'signedAccessHeaders' },
    );
    const mark = proxy.seen.length;
    try {
      await assert.rejects(
        client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'sig/signed', Body: 'x' })),
      );
    } finally {
      client.destroy();
    }
    const r = proxy.seen[mark];
    assert.ok(r?.signedHeaders.includes('cf-access-client-id'));
    assert.equal(r?.verdict, 'SignatureDoesNotMatch');
  });

  test('a wrong secret gets E_STORAGE_AUTH, for HEAD too, without leaking anything', async () => {
    const wrong = 'definitely-not-the-secret';
    const store = storeVia(proxy.endpoint, {
      extraHeaders: ACCESS_HEADERS,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: wrong },
    });
    const mark = proxy.seen.length;
    const leaks = [wrong, ...Object.values(ACCESS_HEADERS)];
    await assert.rejects(
      store.putBytes('sig/w', 'w', { contentType: 'text/plain' }),
      storageError('E_STORAGE_AUTH', leaks),
    );
    await assert.rejects(store.head('sig/w'), storageError('E_STORAGE_AUTH', leaks));
    await assert.rejects(store.checkAccess(), storageError('E_STORAGE_AUTH', leaks));
    const verdicts = proxy.seen.slice(mark).map((r) => r.verdict);
    assert.deepEqual(
      verdicts,
      ['SignatureDoesNotMatch', 'SignatureDoesNotMatch', 'SignatureDoesNotMatch'],
      'a 403 is not retried',
    );
  });

  test('an unknown access key id gets E_STORAGE_AUTH', async () => {
    const store = storeVia(proxy.endpoint, {
      extraHeaders: ACCESS_HEADERS,
      credentials: { accessKeyId: 'AKIAWRONG', secretAccessKey: s3.secretAccessKey },
    });
    await assert.rejects(store.get('sig/a.narinfo'), storageError('E_STORAGE_AUTH', ['AKIAWRONG']));
  });

  test('missing access headers get E_STORAGE_AUTH', async () => {
    const store = storeVia(proxy.endpoint);
    await assert.rejects(store.checkAccess(), storageError('E_STORAGE_AUTH'));
  });
});

describe('S3 failures and retries', { skip }, () => {
  before(async () => {
    s3 = await startS3Server();
  });
  after(async () => {
    for (const store of open.splice(0)) await store.close();
    await s3.close();
  });

  test('a missing bucket gets E_STORAGE_NO_BUCKET from checkAccess, put and list, without retries', async () => {
    const store = storeVia(s3.endpoint, { bucket: 'loft-missing-bucket' });
    const mark = s3.requests.length;
    await assert.rejects(store.checkAccess(), storageError('E_STORAGE_NO_BUCKET'));
    await assert.rejects(
      store.putBytes('x', 'x', { contentType: 'text/plain' }),
      storageError('E_STORAGE_NO_BUCKET'),
    );
    await assert.rejects(async () => {
      for await (const _ of store.list('')) break;
    }, storageError('E_STORAGE_NO_BUCKET'));
    assert.equal(s3.requests.length - mark, 3);
  });

  test('an unreachable endpoint gets E_STORAGE_UNREACHABLE after the allowed attempts', async () => {
    const port = await closedPort();
    const store = storeVia(`http://127.0.0.1:${port}`, { maxAttempts: 2 });
    await assert.rejects(
      store.putBytes('x', 'x', { contentType: 'text/plain' }),
      storageError('E_STORAGE_UNREACHABLE', [s3.secretAccessKey + '/']),
    );
    await assert.rejects(store.head('x'), storageError('E_STORAGE_UNREACHABLE'));
  });

  test('503 SlowDown and 500 are retried with backoff and the upload succeeds', async () => {
    const failures = ['SlowDown', 'InternalError', 'SlowDown'];
    const faulty = await startForwardingProxy(s3.endpoint, (req) => {
      if (req.method !== 'PUT' || failures.length === 0) return undefined;
      const code = failures.shift() ?? 'SlowDown';
      const body = s3ErrorXml(code, 'injected by the test');
      return {
        respond: {
          status: code === 'SlowDown' ? 503 : 500,
          headers: { 'content-type': 'application/xml' },
          body,
        },
      };
    });
    try {
      const store = storeVia(faulty.endpoint);
      await store.putBytes('retry/a', 'payload', { contentType: 'text/plain' });
      assert.equal((await store.get('retry/a'))?.toString(), 'payload');
      assert.equal(faulty.requests.filter((r) => r.method === 'PUT').length, 4);
    } finally {
      await faulty.close();
    }
  });

  test('a multipart part that gets 503 once is retried and the object is whole', async () => {
    let failed = false;
    const faulty = await startForwardingProxy(s3.endpoint, (req, rec) => {
      if (failed || rec.query.get('partNumber') !== '2') return undefined;
      failed = true;
      return {
        respond: {
          status: 503,
          headers: { 'content-type': 'application/xml' },
          body: s3ErrorXml('SlowDown', 'x'),
        },
      };
    });
    try {
      const store = storeVia(faulty.endpoint);
      const data = Buffer.alloc(11 * 1024 * 1024);
      for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
      const body = new PassThrough();
      body.end(data);
      await store.putStream('retry/big', body, { contentType: CONTENT_TYPE_NAR });
      assert.ok(failed);
      assert.ok((await store.get('retry/big'))?.equals(data));
      assert.equal(faulty.requests.filter((r) => r.query.get('partNumber') === '2').length, 2);
    } finally {
      await faulty.close();
    }
  });

  test('per-key DeleteObjects errors become a StorageError naming the first key', async () => {
    const result =
      '<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult><Error><Key>del/b</Key><Code>AccessDenied</Code>' +
      '<Message>Access Denied</Message></Error></DeleteResult>';
    const faulty = await startForwardingProxy(s3.endpoint, (req, rec) =>
      req.method === 'POST' && rec.query.has('delete')
        ? { respond: { status: 200, headers: { 'content-type': 'application/xml' }, body: result } }
        : undefined,
    );
    try {
      const store = storeVia(faulty.endpoint);
      await assert.rejects(store.deleteMany(['del/a', 'del/b']), (err) => {
        assert.ok(err instanceof StorageError);
        assert.equal(err.code, 'E_STORAGE_AUTH');
        assert.match(err.message, /could not delete 1 of 2 objects .* first del\/b \(AccessDenied\)/);
        return true;
      });
    } finally {
      await faulty.close();
    }
  });

  test('403 and 400 are not retried; 429 is', async () => {
    const answers = [403, 400, 429];
    const faulty = await startForwardingProxy(s3.endpoint, (req) => {
      const status = answers.shift();
      if (req.method !== 'PUT' || status === undefined) return undefined;
      const code = status === 403 ? 'AccessDenied' : status === 400 ? 'InvalidArgument' : 'TooManyRequests';
      return {
        respond: { status, headers: { 'content-type': 'application/xml' }, body: s3ErrorXml(code, 'x') },
      };
    });
    try {
      const store = storeVia(faulty.endpoint);
      await assert.rejects(
        store.putBytes('r/1', '1', { contentType: 'text/plain' }),
        storageError('E_STORAGE_AUTH'),
      );
      await assert.rejects(
        store.putBytes('r/2', '2', { contentType: 'text/plain' }),
        storageError('E_STORAGE'),
      );
      await store.putBytes('r/3', '3', { contentType: 'text/plain' });
      assert.deepEqual(
        faulty.requests.map((r) => r.key),
        ['r/1', 'r/2', 'r/3', 'r/3'],
      );
    } finally {
      await faulty.close();
    }
  });
});
