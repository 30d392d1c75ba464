// Unfinished multipart uploads through S3ObjectStore (and LazyObjectStore, as the pruner sees it).
//
// s3rver 3.7.1 implements neither call: ListMultipartUploads answers 501 NotImplemented and
// AbortMultipartUpload 405 MethodNotAllowed. So this file holds:
//  - a test against the real server: s3rver's answers are handled (nothing listed, with a warning;
//    an abort fails with a StorageError), or, with LOFT_TEST_S3_ENDPOINT set, a real round trip
//    (create, list, abort, abort again);
//  - PROTOCOL tests: a recording proxy (startForwardingProxy) answers the multipart calls with
//    S3's own XML bodies and status codes, and the tests check the requests sent (query
//    parameters, prefixed keys, paging markers) and what the store made of the answers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { StorageError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { multipartUploadsOf } from '../../src/storage/multipart-uploads.js';
import { openObjectStore } from '../../src/storage/open-store.js';
import { createS3Client } from '../../src/storage/s3-client.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import {
  s3ErrorXml,
  startForwardingProxy,
  startS3Server,
  storeOptionsFor,
  type ForwardingProxy,
  type InterceptResult,
  type RecordedRequest,
  type TestS3,
} from '../helpers/s3-server.js';
import { skipTest } from '../helpers/skip.js';

let s3: TestS3;
before(async () => {
  s3 = await startS3Server();
});
after(async () => {
  await s3.close();
});

function logCapture() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: createLogger({ destination }) };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('multipart uploads on the real server', () => {
  test('s3rver: nothing is listed (with a warning) and an abort is a StorageError', async (t) => {
    if (s3.external) {
      skipTest(
        t,
        'in-process-s3',
        'checks s3rver itself; against an external endpoint the round trip below covers it',
      );
      return;
    }
    const { lines, logger } = logCapture();
    const store = new S3ObjectStore({ ...storeOptionsFor(s3), maxAttempts: 1, logger });
    try {
      const mark = s3.requests.length;
      assert.deepEqual(await collect(store.listMultipartUploads()), []);
      assert.ok(lines.some((l) => l.code === 'NotImplemented' && l.status === 501 && l.level === 40));
      const list = s3.requests.slice(mark).find((r) => r.query.has('uploads'));
      assert.equal(list?.method, 'GET');
      await assert.rejects(store.abortMultipartUpload('nar/x.nar.zst', 'some-id'), (err) => {
        assert.ok(err instanceof StorageError);
        assert.match(err.message, /abort multipart upload of nar\/x\.nar\.zst.*MethodNotAllowed, HTTP 405/);
        return true;
      });
    } finally {
      await store.close();
    }
  });

  test('external endpoint: create, list, abort, abort again', async (t) => {
    if (!s3.external) {
      skipTest(t, 'external-s3', 's3rver implements neither ListMultipartUploads nor AbortMultipartUpload');
      return;
    }
    const store = new S3ObjectStore(storeOptionsFor(s3));
    const client = createS3Client(storeOptionsFor(s3));
    try {
      const key = 'nar/unfinished.nar.zst';
      const created = await client.send(
        new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: s3.keyPrefix + key }),
      );
      const uploadId = created.UploadId!;
      const mine = (await collect(store.listMultipartUploads())).filter((u) => u.uploadId === uploadId);
      assert.equal(mine.length, 1);
      assert.equal(mine[0]!.key, key);
      assert.ok(Math.abs(mine[0]!.initiated.getTime() - Date.now()) < 10 * 60_000);
      await store.abortMultipartUpload(key, uploadId);
      const left = (await collect(store.listMultipartUploads())).filter((u) => u.uploadId === uploadId);
      assert.deepEqual(left, []);
      await store.abortMultipartUpload(key, uploadId); // NoSuchUpload now: not an error
    } finally {
      client.destroy();
      await store.close();
    }
  });
});

const PREFIX = 'cache/';
const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

function uploadXml(key: string, uploadId: string, initiated?: string): string {
  const owner =
    '<ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID><DisplayName>loft</DisplayName>';
  return (
    `<Upload><Key>${key}</Key><UploadId>${uploadId}</UploadId><Initiator>${owner}</Initiator>` +
    `<Owner>${owner}</Owner><StorageClass>STANDARD</StorageClass>` +
    (initiated ? `<Initiated>${initiated}</Initiated>` : '') +
    '</Upload>'
  );
}

/** Two pages as S3 sends them: the first truncated, naming where the second starts. */
function listPage(bucket: string, query: URLSearchParams): string {
  const second = query.get('key-marker') === `${PREFIX}nar/b.nar.zst`;
  const head =
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="${NS}">` +
    `<Bucket>${bucket}</Bucket><KeyMarker>${query.get('key-marker') ?? ''}</KeyMarker>` +
    `<UploadIdMarker>${query.get('upload-id-marker') ?? ''}</UploadIdMarker><Prefix>${PREFIX}</Prefix>` +
    '<MaxUploads>2</MaxUploads>';
  if (!second) {
    return (
      head +
      `<NextKeyMarker>${PREFIX}nar/b.nar.zst</NextKeyMarker><NextUploadIdMarker>up-b</NextUploadIdMarker>` +
      '<IsTruncated>true</IsTruncated>' +
      uploadXml(`${PREFIX}nar/a.nar.zst`, 'up-a', '2026-10-01T12:00:00.000Z') +
      uploadXml(`${PREFIX}nar/b.nar.zst`, 'up-b', '2026-10-02T08:30:00.000Z') +
      '</ListMultipartUploadsResult>'
    );
  }
  return (
    head +
    '<IsTruncated>false</IsTruncated>' +
    uploadXml(`${PREFIX}nar/c&amp;d.nar.xz`, 'up-c') + // no Initiated: counts as now
    '</ListMultipartUploadsResult>'
  );
}

/** Answers the multipart calls (and the access check's ListObjectsV2); anything else goes to s3rver. */
function intercept(_req: unknown, r: RecordedRequest): InterceptResult | undefined {
  const xml = { 'content-type': 'application/xml' };
  if (r.method === 'GET' && r.key === '' && r.query.has('uploads')) {
    return { respond: { status: 200, headers: xml, body: listPage(r.bucket, r.query) } };
  }
  if (r.method === 'GET' && r.key === '' && r.query.get('list-type') === '2') {
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="${NS}"><Name>${r.bucket}</Name><Prefix>${PREFIX}</Prefix><KeyCount>0</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`;
    return { respond: { status: 200, headers: xml, body } };
  }
  if (r.method === 'DELETE' && r.query.has('uploadId')) {
    const id = r.query.get('uploadId');
    if (id === 'gone') {
      const body = s3ErrorXml('NoSuchUpload', 'The specified upload does not exist.');
      return { respond: { status: 404, headers: xml, body } };
    }
    if (id === 'forbidden') {
      return { respond: { status: 403, headers: xml, body: s3ErrorXml('AccessDenied', 'Access Denied') } };
    }
    return { respond: { status: 204 } };
  }
  return undefined;
}

describe('multipart uploads: protocol tests against recorded S3 answers', () => {
  let proxy: ForwardingProxy;
  let store: S3ObjectStore;
  before(async () => {
    proxy = await startForwardingProxy(s3.backend, intercept);
    store = new S3ObjectStore({ ...storeOptionsFor(s3), endpoint: proxy.endpoint, keyPrefix: PREFIX });
  });
  after(async () => {
    await store.close();
    await proxy.close();
  });

  test('lists every page under the prefix, keys without it', async () => {
    const mark = proxy.requests.length;
    const before = Date.now();
    const uploads = await collect(store.listMultipartUploads());
    assert.deepEqual(
      uploads.map((u) => [u.key, u.uploadId]),
      [
        ['nar/a.nar.zst', 'up-a'],
        ['nar/b.nar.zst', 'up-b'],
        ['nar/c&d.nar.xz', 'up-c'],
      ],
    );
    assert.equal(uploads[0]!.initiated.toISOString(), '2026-10-01T12:00:00.000Z');
    assert.equal(uploads[1]!.initiated.toISOString(), '2026-10-02T08:30:00.000Z');
    const missing = uploads[2]!.initiated.getTime();
    assert.ok(missing >= before && missing <= Date.now(), 'a missing Initiated counts as now');
    const sent = proxy.requests.slice(mark);
    assert.equal(sent.length, 2);
    for (const r of sent) {
      assert.equal(r.method, 'GET');
      assert.equal(r.bucket, s3.bucket);
      assert.ok(r.query.has('uploads'));
      assert.equal(r.query.get('prefix'), PREFIX);
    }
    assert.equal(sent[0]!.query.has('key-marker'), false);
    assert.equal(sent[0]!.query.has('upload-id-marker'), false);
    assert.equal(sent[1]!.query.get('key-marker'), `${PREFIX}nar/b.nar.zst`);
    assert.equal(sent[1]!.query.get('upload-id-marker'), 'up-b');
  });

  test('aborts with the prefixed key; NoSuchUpload is not an error, AccessDenied is', async () => {
    const mark = proxy.requests.length;
    await store.abortMultipartUpload('nar/a.nar.zst', 'up-a');
    await store.abortMultipartUpload('nar/b.nar.zst', 'gone');
    await assert.rejects(store.abortMultipartUpload('nar/c.nar.zst', 'forbidden'), (err) => {
      assert.ok(err instanceof StorageError);
      assert.equal(err.code, 'E_STORAGE_AUTH');
      return true;
    });
    const sent = proxy.requests.slice(mark).map((r) => [r.method, r.key, r.query.get('uploadId')]);
    assert.deepEqual(sent, [
      ['DELETE', `${PREFIX}nar/a.nar.zst`, 'up-a'],
      ['DELETE', `${PREFIX}nar/b.nar.zst`, 'gone'],
      ['DELETE', `${PREFIX}nar/c.nar.zst`, 'forbidden'],
    ]);
  });

  test('the pruner finds both methods through openObjectStore (LazyObjectStore) and they reach S3', async () => {
    const lazy = openObjectStore({
      kind: 's3',
      s3: {
        bucket: s3.bucket,
        region: s3.region,
        endpoint: proxy.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        extraHeaders: {},
        partSizeMb: 5,
        prefix: PREFIX,
        maxAttempts: 1,
        requestTimeoutSecs: 300,
      },
    });
    try {
      const mp = multipartUploadsOf(lazy);
      assert.ok(mp, 'feature detection sees the multipart methods before the store is opened');
      const mark = proxy.requests.length;
      const keys = (await collect(mp.listMultipartUploads())).map((u) => u.key);
      assert.deepEqual(keys, ['nar/a.nar.zst', 'nar/b.nar.zst', 'nar/c&d.nar.xz']);
      await mp.abortMultipartUpload('nar/a.nar.zst', 'up-a');
      const sent = proxy.requests.slice(mark);
      assert.equal(sent.filter((r) => r.query.has('uploads')).length, 2);
      assert.deepEqual(
        sent.filter((r) => r.method === 'DELETE').map((r) => r.key),
        [`${PREFIX}nar/a.nar.zst`],
      );
    } finally {
      await lazy.close();
    }
  });
});
