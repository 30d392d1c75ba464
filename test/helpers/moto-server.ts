// A second S3 implementation for tests: moto's server (Python) as a child process on a free port of
// 127.0.0.1, behind the same recording proxy as s3rver. Unlike s3rver it honours `If-None-Match: *`
// (412), enforces AWS's multipart rules (parts of at least 5 MiB but the last) and bucket policies:
// anonymous GETs, which is how Nix reads a cache, need a public-read policy, as on AWS.
// startMotoServer() answers undefined when moto is not installed: the caller skips with a reason.
import { skipOption } from './skip.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { CreateBucketCommand, PutBucketPolicyCommand, S3Client } from '@aws-sdk/client-s3';
import { startForwardingProxy, type TestS3 } from './s3-server.js';
import { registerSecretWithEncodings } from './test-secrets.js';

/** Why moto cannot run here, or undefined when `python3 -c 'import moto'` works. */
export function motoMissing(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import moto.server'], { stdio: 'ignore', timeout: 60_000 });
  return r.status === 0
    ? undefined
    : skipOption('moto', 'moto is not installed (pip install "moto[server]")');
}

export async function startMotoServer(
  options: { bucket?: string; publicRead?: boolean } = {},
): Promise<TestS3> {
  const bucket = options.bucket ?? 'loft-test';
  const port = await freePort();
  const child = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  const log: string[] = [];
  child.stderr.on('data', (c: Buffer) => log.push(c.toString()));
  const backend = `http://127.0.0.1:${port}`;
  try {
    await waitUntilUp(backend, child, log);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  // moto accepts any key pair; distinctive ones still go to the suite-wide secret check.
  const accessKeyId = `LOFTMOTO${randomBytes(6).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(24).toString('base64url');
  registerSecretWithEncodings('S3 access key id', accessKeyId);
  registerSecretWithEncodings('S3 secret key', secretAccessKey);
  await createBucket(backend, bucket, { accessKeyId, secretAccessKey }, options.publicRead ?? true);
  const proxy = await startForwardingProxy(backend);
  return {
    endpoint: proxy.endpoint,
    backend,
    bucket,
    region: 'us-east-1',
    accessKeyId,
    secretAccessKey,
    keyPrefix: '',
    dir: undefined,
    external: false,
    requests: proxy.requests,
    async close() {
      await proxy.close();
      await stop(child);
    },
  };
}

async function createBucket(
  endpoint: string,
  bucket: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  publicRead: boolean,
): Promise<void> {
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    if (!publicRead) return;
    // What a public binary cache on AWS needs: anyone may GET (Nix reads without credentials).
    const policy = {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/*` },
      ],
    };
    await client.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify(policy) }));
  } finally {
    client.destroy();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(url: string, child: ChildProcess, log: string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`moto exited with ${child.exitCode}: ${log.join('').slice(-500)}`);
    try {
      const res = await fetch(`${url}/moto-api/`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`moto did not answer on ${url} within 60 s: ${log.join('').slice(-500)}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** The S3 implementations the core integration cases run against. */
export const S3_KINDS = ['s3rver', 'moto'] as const;

/** A describe() skip option: the reason moto cannot run here, else false. Never a silent pass. */
export function skipUnlessAvailable(kind: (typeof S3_KINDS)[number]): string | false {
  return kind === 'moto' ? (motoMissing() ?? false) : false;
}
