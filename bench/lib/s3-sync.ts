// Uploads every file under a directory to a bucket the way `aws s3 sync DIR s3://BUCKET` does into
// an empty bucket with the AWS CLI's default transfer settings: at most 10 requests at once
// (max_concurrent_requests), one PutObject for a file under 8 MiB (multipart_threshold), and a
// multipart upload of 8 MiB parts (multipart_chunksize) for a larger one. For machines without an
// aws CLI. The multipart part matters to the comparison: a server's cost per byte differs between
// the two (s3rver reads the parts back and writes the object again on completion, see
// docs/s3-server-cost.md), and loft sends its large NARs in parts as well.
// Runs as its own process so its CPU time is measured apart:
//   node bench/lib/s3-sync.ts DIR ENDPOINT BUCKET [CONCURRENCY]
// (Node 24 runs this TypeScript file directly: it only uses erasable type syntax.)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, relative } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import pLimit, { type LimitFunction } from 'p-limit';

/** The AWS CLI's defaults for multipart_threshold and multipart_chunksize (8 MB, as MiB). */
const MULTIPART_THRESHOLD = 8 * 1024 * 1024;
const PART_SIZE = 8 * 1024 * 1024;

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** One file in parts; every request (create, each part, complete) takes one of the shared slots. */
async function multipart(client: S3Client, limit: LimitFunction, bucket: string, key: string, file: string) {
  const size = statSync(file).size;
  const { UploadId } = await limit(() =>
    client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key })),
  );
  const handle = await open(file, 'r');
  try {
    const count = Math.ceil(size / PART_SIZE);
    const parts = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        limit(async () => {
          const length = Math.min(PART_SIZE, size - i * PART_SIZE);
          const body = Buffer.allocUnsafe(length);
          await handle.read(body, 0, length, i * PART_SIZE);
          const input = { Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: body };
          const { ETag } = await client.send(new UploadPartCommand(input));
          return { ETag, PartNumber: i + 1 };
        }),
      ),
    );
    const done = { Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } };
    await limit(() => client.send(new CompleteMultipartUploadCommand(done)));
  } finally {
    await handle.close();
  }
}

async function sync(dir: string, endpoint: string, bucket: string, concurrency: number): Promise<number> {
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    // The SDK's default aws-chunked bodies are stored as data by s3rver (see src/storage/s3-client.ts).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const files = listFiles(dir);
  const limit = pLimit(concurrency);
  await Promise.all(
    files.map((file) => {
      const key = relative(dir, file);
      if (statSync(file).size >= MULTIPART_THRESHOLD) return multipart(client, limit, bucket, key, file);
      return limit(() =>
        client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(file) })),
      );
    }),
  );
  client.destroy();
  return files.length;
}

const [dir, endpoint, bucket, concurrency] = process.argv.slice(2);
if (dir === undefined || endpoint === undefined || bucket === undefined) {
  console.error('usage: node bench/lib/s3-sync.ts DIR ENDPOINT BUCKET [CONCURRENCY]');
  process.exit(2);
}
const n = await sync(dir, endpoint, bucket, Number(concurrency ?? 10));
console.log(JSON.stringify({ files: n }));
