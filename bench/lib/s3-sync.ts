// A minimal `aws s3 sync DIR s3://BUCKET` for the pipeline bench: every file under DIR becomes one
// PutObject, 10 at a time (the AWS CLI's default max_concurrent_requests). Debian's awscli is not
// installed on the bench machine, and a pip aws-cli 1.x is not what users run; this keeps the
// "nix copy + sync" side in one known shape. Files are read whole (the cache's NARs are at most a
// few hundred MiB here). Run as its own process so its CPU and memory are measured on their own:
//   node bench/lib/s3-sync.ts DIR ENDPOINT BUCKET
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

const CONCURRENCY = 10;

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  }
  return out;
}

async function main(): Promise<void> {
  const [dir, endpoint, bucket] = process.argv.slice(2);
  if (dir === undefined || endpoint === undefined || bucket === undefined) {
    throw new Error('usage: s3-sync.ts DIR ENDPOINT BUCKET');
  }
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const files = await filesUnder(dir);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < files.length; i = next++) {
      const file = files[i]!;
      const body = await readFile(file);
      const key = relative(dir, file);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  client.destroy();
}

await main();
