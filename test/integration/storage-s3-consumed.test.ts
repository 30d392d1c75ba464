// PutOptions.consumed on S3 (src/storage/s3-object-store.ts, s3-part-upload.ts): each body chunk is
// reported once the store holds no reference to it, so its lender may overwrite it at once. Here
// every reported chunk is overwritten on the spot; what s3rver stores must still be the body, for a
// body sent in one PutObject and for one sent in parts, and each takes the requests it should.
import { after, before, describe, test } from 'node:test';
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

/** `body` in chunks of 64 KiB to 1 MiB, each a Buffer of its own (as the compressor lends them). */
function chunksOf(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < body.length; i++) {
    const n = Math.min(body.length - at, (64 << 10) * (1 + (i % 16)));
    out.push(Buffer.from(body.subarray(at, at + n)));
    at += n;
  }
  return out;
}

describe('S3 putStream gives body chunks back only once done with them', () => {
  // The store's parts are 5 MiB (storeOptionsFor): a body up to an eighth of a part longer still goes
  // in one PutObject (s3-object-store.ts, PART_SLACK_DIVISOR), its last chunks held past the part.
  const PART = 5 * 1024 * 1024;
  for (const [name, size, requests] of [
    ['one PutObject', 3 * 1024 * 1024 + 5, 1],
    ['one PutObject, a few bytes past one part', PART + 300, 1],
    ['one PutObject, an eighth of a part past one part', PART + PART / 8, 1],
    ['a multipart upload, past a part and its eighth', PART + PART / 8 + 1, 4],
    ['a multipart upload', 12 * 1024 * 1024 + 77, 5],
  ] as const) {
    test(name, async () => {
      const store = new S3ObjectStore(storeOptionsFor(s3));
      try {
        const body = randomBytes(size);
        const chunks = chunksOf(body);
        const given = new Set<Buffer>();
        const key = `consumed/${size}`;
        const mark = s3.requests.length;
        await store.putStream(key, Readable.from(chunks, { objectMode: false }), {
          contentType: 'application/octet-stream',
          sizeHint: size,
          consumed: (chunk) => {
            given.add(chunk);
            chunk.fill(0xee); // the lender reuses it at once
          },
        });
        // Each chunk comes back itself, none merged into a new Buffer on the way (storage/
        // body-source.ts reads the body chunk by chunk), so its lender can reuse every one.
        assert.equal(given.size, chunks.length, 'as many chunks given back as were pushed');
        for (const [i, chunk] of chunks.entries()) assert.ok(given.has(chunk), `chunk ${i} given back`);
        const sent = s3.requests.slice(mark).filter((r) => r.key === key);
        assert.equal(sent.length, requests, sent.map((r) => `${r.method} ${r.url}`).join('\n'));
        const stored = await store.get(key);
        assert.ok(stored?.equals(body), 'the stored object is the body');
      } finally {
        await store.close();
      }
    });
  }
});
