// Resuming an unfinished multipart upload, at the storage level, on both S3 implementations: moto
// lists an upload's parts (ListParts), so a resumed upload sends only the parts it lacks; s3rver
// cannot (405), so the uploader starts clean there. The unfinished upload is made by an independent
// client (the AWS SDK directly), as a killed loft would have left it.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import {
  confirmedParts,
  ResumeMismatch,
  type MultipartJournal,
  type StoredPart,
} from '../../src/storage/resumable-upload.js';
import { motoMissing, startMotoServer } from '../helpers/moto-server.js';
import { startS3Server, storeOptionsFor, type TestS3 } from '../helpers/s3-server.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;

function journal(): MultipartJournal & { events: string[] } {
  const events: string[] = [];
  return {
    events,
    started: (id) => void events.push(`started ${id}`),
    stored: (_id, p) => void events.push(`stored ${p.partNumber}`),
    ended: (id) => void events.push(`ended ${id}`),
  };
}

/** What a killed loft leaves: an upload with the first `n` parts of `body` stored. */
async function unfinishedUpload(s3: TestS3, key: string, body: Buffer, n: number) {
  const client = new S3Client({
    endpoint: s3.backend,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: key }));
  const parts: StoredPart[] = [];
  for (let i = 1; i <= n; i++) {
    const bytes = body.subarray((i - 1) * PART, i * PART);
    const out = await client.send(
      new UploadPartCommand({ Bucket: s3.bucket, Key: key, UploadId, PartNumber: i, Body: bytes }),
    );
    const md5 = createHash('md5').update(bytes).digest('hex');
    parts.push({ partNumber: i, etag: out.ETag!, size: bytes.length, md5 });
  }
  return {
    uploadId: UploadId!,
    parts,
    abort: () =>
      client
        .send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: key, UploadId }))
        .catch(() => undefined)
        .finally(() => client.destroy()),
  };
}

const partPuts = (s3: TestS3, key: string) =>
  s3.requests.filter((r) => r.method === 'PUT' && r.key === key && r.query.has('partNumber'));

for (const kind of ['moto', 's3rver'] as const) {
  describe(`resuming a multipart upload on ${kind}`, () => {
    let s3: TestS3 | undefined;
    let store: S3ObjectStore;
    const missing = kind === 'moto' ? motoMissing() : undefined;

    before(async () => {
      if (missing) return;
      s3 = kind === 'moto' ? await startMotoServer() : await startS3Server();
      store = new S3ObjectStore({ ...storeOptionsFor(s3), partSizeBytes: PART });
    });
    after(async () => {
      await store?.close();
      await s3?.close();
    });

    test('sends only the parts the server lacks, and the object is byte-identical', async (t) => {
      if (missing) return t.skip(missing);
      const body = randomBytes(13 * MiB);
      const key = `nar/resume-${kind}.nar.zst`;
      const left = await unfinishedUpload(s3!, key, body, 2);
      t.after(left.abort);
      const listed = await store.listUploadParts(key, left.uploadId);
      const j = journal();
      const resume = listed && {
        uploadId: left.uploadId,
        partSize: PART,
        parts: confirmedParts(left.parts, listed),
      };
      s3!.requests.length = 0;
      await store.putStream(key, Readable.from([body]), {
        contentType: 'application/x-nix-nar',
        resumable: { journal: j, ...(resume ? { resume } : {}) },
      });
      assert.deepEqual(await store.get(key), body);
      if (kind === 'moto') {
        // moto lists both parts; only the third (3 MiB) goes out.
        assert.equal(resume?.parts.length, 2);
        assert.deepEqual(
          partPuts(s3!, key).map((r) => r.query.get('partNumber')),
          ['3'],
        );
        assert.deepEqual(j.events, [`started ${left.uploadId}`, 'stored 3', `ended ${left.uploadId}`]);
        assert.equal(
          await store.listUploadParts(key, left.uploadId),
          undefined,
          'completed: nothing left to list',
        );
      } else {
        // s3rver cannot list parts: no resume, a clean upload of all three.
        assert.equal(listed, undefined);
        assert.equal(partPuts(s3!, key).length, 3);
      }
    });

    // s3rver lists no parts, so there is nothing to resume there: this case exists on moto only.
    if (kind !== 's3rver') {
      test('a part whose bytes differ aborts the upload with ResumeMismatch', async (t) => {
        if (missing) return t.skip(missing);
        const body = randomBytes(12 * MiB);
        const key = `nar/mismatch-${kind}.nar.zst`;
        const left = await unfinishedUpload(s3!, key, body, 2);
        t.after(left.abort);
        const other = Buffer.from(body);
        other.writeUInt8(other.readUInt8(PART + 7) ^ 1, PART + 7); // part 2 differs, as after another level
        const listed = (await store.listUploadParts(key, left.uploadId))!;
        const resume = { uploadId: left.uploadId, partSize: PART, parts: confirmedParts(left.parts, listed) };
        s3!.requests.length = 0;
        const j = journal();
        await assert.rejects(
          store.putStream(key, Readable.from([other]), {
            contentType: 'application/x-nix-nar',
            resumable: { journal: j, resume },
          }),
          (err: unknown) => err instanceof ResumeMismatch && err.partNumber === 2,
        );
        assert.equal(partPuts(s3!, key).length, 0, 'no part was sent');
        assert.equal(await store.listUploadParts(key, left.uploadId), undefined, 'the upload was aborted');
        assert.equal(await store.head(key), undefined);
        assert.deepEqual(j.events.at(-1), `ended ${left.uploadId}`);
      });
    }

    test('a new upload records its id and every acknowledged part in the journal', async (t) => {
      if (missing) return t.skip(missing);
      const body = randomBytes(11 * MiB);
      const key = `nar/journal-${kind}.nar.zst`;
      const j = journal();
      await store.putStream(key, Readable.from([body]), {
        contentType: 'application/x-nix-nar',
        resumable: { journal: j },
      });
      assert.deepEqual(await store.get(key), body);
      assert.match(j.events[0]!, /^started /);
      assert.deepEqual(j.events.slice(1, -1).sort(), ['stored 1', 'stored 2', 'stored 3']);
      assert.match(j.events.at(-1)!, /^ended /);
    });
  });
}
