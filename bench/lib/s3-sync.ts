// Uploads every file under a directory to a bucket, one PutObject each, a bounded number at once:
// what `aws s3 sync DIR s3://BUCKET` does for a fresh bucket (its default is 10 requests at once),
// for machines without an aws CLI. Runs as its own process so its CPU time is measured apart:
//   node bench/lib/s3-sync.ts DIR ENDPOINT BUCKET [CONCURRENCY]
// (Node 24 runs this TypeScript file directly: it only uses erasable type syntax.)
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
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
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++]!;
      const key = relative(dir, file);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(file) }));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
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
