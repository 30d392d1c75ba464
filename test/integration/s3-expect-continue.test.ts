// Bodies of 2 MiB and more go without `Expect: 100-continue` (src/storage/s3-client.ts): the SDK's
// HTTP handler sends such a request on a fresh connection and waits for `100 Continue`, two round
// trips per part over a wide-area link. Checked on what a real S3 server (s3rver) received.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { startS3Server, storeOptionsFor, type TestS3 } from '../helpers/s3-server.js';

let s3: TestS3;
before(async () => {
  s3 = await startS3Server();
});
after(async () => {
  await s3.close();
});

test('a 3 MiB PutObject and the parts of a 12 MiB upload carry no Expect header', async (t) => {
  if (s3.external) return t.skip('needs the recording proxy of the in-process s3rver');
  const store = new S3ObjectStore(storeOptionsFor(s3));
  try {
    const mark = s3.requests.length;
    await store.putBytes('nar/three.nar', randomBytes(3 * 1024 * 1024), { contentType: 'x' });
    await store.putStream('nar/twelve.nar', Readable.from([randomBytes(12 * 1024 * 1024)]), {
      contentType: 'x',
    });
    const puts = s3.requests.slice(mark).filter((r) => r.method === 'PUT');
    assert.equal(puts.filter((r) => r.query.has('partNumber')).length, 3);
    assert.deepEqual(
      puts.map((r) => r.headers['expect']),
      puts.map(() => undefined),
    );
    assert.equal((await store.head('nar/twelve.nar'))?.size, 12 * 1024 * 1024);
  } finally {
    await store.close();
  }
});
