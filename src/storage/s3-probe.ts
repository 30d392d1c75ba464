// `loft doctor` for an S3 target: every check in order, each one line with what to do when it fails.
// What is written: `.loft/doctor-<run>-object` (put/get/delete), `-if-none-match` (conditional
// create), `-md5` (checksum header), `-multipart` (a two-part upload of 1 KiB parts, aborted or
// deleted); all are removed before doctor returns. Requests go out once (no retries), so a failure
// shows as it is.
import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  checkAnonymousRead,
  checkReach,
  checkTls,
  endpointOf,
  type EndpointTarget,
} from './endpoint-probe.js';
import { listUploadParts, type MultipartTarget } from './s3-multipart.js';
import { createS3Client } from './s3-client.js';
import { S3ObjectStore, type S3StoreOptions } from './s3-object-store.js';
import { errorCodeOf, httpStatusOf } from './retry.js';
import {
  checkConditionalCreate,
  checkReadWrite,
  messageOf,
  newProbeRun,
  probeKey,
  type CheckResult,
} from './store-probe.js';

/** AWS refuses requests signed more than 15 minutes off its clock (RequestTimeTooSkewed). */
const MAX_SKEW_MS = 15 * 60_000;
const WARN_SKEW_MS = 60_000;
const BAD_CREDENTIALS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
]);

export async function probeS3(options: S3StoreOptions): Promise<CheckResult[]> {
  const url = endpointOf(options.endpoint, options.region);
  const target: EndpointTarget = {
    url,
    bucket: options.bucket,
    prefix: options.keyPrefix ?? '',
    forcePathStyle: options.forcePathStyle,
  };
  const results: CheckResult[] = [addressing(target)];
  const reach = await checkReach(url);
  results.push(reach, reach.status === 'fail' ? skipped('tls', 'endpoint unreachable') : await checkTls(url));
  if (reach.status === 'fail') return [...results, ...skipAll('endpoint unreachable')];
  const dates: Date[] = [];
  const client = createS3Client({ ...options, maxAttempts: 1 });
  recordServerDates(client, dates);
  const store = new S3ObjectStore({ ...options, maxAttempts: 1 });
  try {
    const started = Date.now();
    const access = await checkAccess(client, options);
    results.push(...access, clockSkew(dates[0], (started + Date.now()) / 2));
    if (access.some((r) => r.status === 'fail')) {
      const done = new Set(results.map((r) => r.id));
      return [...results, ...skipAll('no access to the bucket').filter((r) => !done.has(r.id))];
    }
    const run = newProbeRun();
    results.push(await checkReadWrite(store, run));
    results.push(await checkConditionalCreate(store, run));
    const mpTarget = {
      client,
      bucket: options.bucket,
      prefix: target.prefix,
      logger: undefined,
      fail: (_: string, e: unknown) => e as Error,
    };
    results.push(await checkMultipart(mpTarget, probeKey(run, 'multipart')));
    results.push(await checkContentMd5(client, store, options.bucket, target.prefix, probeKey(run, 'md5')));
    const info = await store.head('nix-cache-info').catch(() => undefined);
    results.push(await checkAnonymousRead(target, info !== undefined));
    return results;
  } finally {
    client.destroy();
    await store.close();
  }
}

function skipped(id: string, why: string): CheckResult {
  return { id, status: 'skip', detail: `not checked: ${why}` };
}

function skipAll(why: string): CheckResult[] {
  const ids = [
    'credentials',
    'bucket',
    'list',
    'clock',
    'read-write',
    'conditional-create',
    'multipart',
    'checksum',
    'anonymous-read',
  ];
  return ids.map((id) => skipped(id, why));
}

/** Path-style is what a custom endpoint on an IP address or localhost needs (no DNS name per bucket). */
function addressing(t: EndpointTarget): CheckResult {
  if (t.forcePathStyle)
    return { id: 'addressing', status: 'ok', detail: `path-style: ${t.url.origin}/${t.bucket}/...` };
  const ipOrLocal = /^(\d+\.){3}\d+$|^\[.*\]$|^localhost$/.test(t.url.hostname);
  if (ipOrLocal) {
    return {
      id: 'addressing',
      status: 'fail',
      detail: `virtual-host style needs a DNS name per bucket, but the endpoint is ${t.url.hostname}`,
      fix: 'set s3.force_path_style = true',
    };
  }
  return { id: 'addressing', status: 'ok', detail: `virtual-host style: ${t.bucket}.${t.url.host}` };
}

/** The server's Date on every answer, errors included (the one clock all hosts of a bucket share). */
function recordServerDates(client: S3Client, dates: Date[]): void {
  type Handler = (args: unknown) => Promise<{ response: unknown }>;
  const middleware =
    (next: Handler): Handler =>
    async (args) => {
      const result = await next(args);
      const date = (result.response as { headers?: Record<string, string> }).headers?.date;
      if (date !== undefined && !Number.isNaN(Date.parse(date))) dates.push(new Date(date));
      return result;
    };
  client.middlewareStack.add(middleware as unknown as Parameters<S3Client['middlewareStack']['add']>[0], {
    step: 'deserialize',
    priority: 'low',
    name: 'loftDoctorDateMiddleware',
  });
}

async function checkAccess(client: S3Client, o: S3StoreOptions): Promise<CheckResult[]> {
  try {
    const out = await client.send(
      new ListObjectsV2Command({ Bucket: o.bucket, Prefix: o.keyPrefix ?? '', MaxKeys: 1 }),
    );
    if (out.Name !== o.bucket) {
      const fix = 'check s3.endpoint: the answer was not an S3 listing';
      return [
        ok('credentials', 'accepted'),
        ok('bucket', 'answered'),
        { id: 'list', status: 'fail', detail: 'not an S3 listing', fix },
      ];
    }
    return [
      ok('credentials', 'accepted'),
      ok('bucket', `"${o.bucket}" exists`),
      ok('list', 'ListObjectsV2 works'),
    ];
  } catch (err) {
    const code = errorCodeOf(err) ?? `HTTP ${httpStatusOf(err) ?? '?'}`;
    if (BAD_CREDENTIALS.has(code)) {
      const fix = 'check s3.access_key / s3.secret_key (or the AWS_* environment, profile, session token)';
      return [
        { id: 'credentials', status: 'fail', detail: `refused: ${code}`, fix },
        skipped('bucket', code),
        skipped('list', code),
      ];
    }
    if (code === 'NoSuchBucket') {
      const fix = `create the bucket "${o.bucket}" or fix s3.bucket / s3.region`;
      return [
        ok('credentials', 'accepted'),
        { id: 'bucket', status: 'fail', detail: 'NoSuchBucket', fix },
        skipped('list', code),
      ];
    }
    if (code === 'RequestTimeTooSkewed') {
      return [
        { id: 'credentials', status: 'fail', detail: code, fix: 'set this host clock right (NTP)' },
        skipped('bucket', code),
        skipped('list', code),
      ];
    }
    return [
      ok('credentials', 'not refused'),
      await bucketByHead(client, o.bucket),
      {
        id: 'list',
        status: 'fail',
        detail: `ListObjectsV2: ${code}`,
        fix: 'allow s3:ListBucket on the bucket',
      },
    ];
  }
}

async function bucketByHead(client: S3Client, bucket: string): Promise<CheckResult> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return ok('bucket', `"${bucket}" exists`);
  } catch (err) {
    const status = httpStatusOf(err);
    if (status === 404)
      return { id: 'bucket', status: 'fail', detail: 'not found', fix: `create the bucket "${bucket}"` };
    return { id: 'bucket', status: 'skip', detail: `HeadBucket: ${errorCodeOf(err) ?? status ?? '?'}` };
  }
}

function clockSkew(server: Date | undefined, localMs: number): CheckResult {
  if (server === undefined) return { id: 'clock', status: 'skip', detail: 'the server sent no Date header' };
  const skew = server.getTime() - localMs;
  // Date has whole seconds: anything under 1 s is noise.
  const text = `${(skew / 1000).toFixed(1)} s against the server's Date`;
  if (Math.abs(skew) > MAX_SKEW_MS)
    return {
      id: 'clock',
      status: 'fail',
      detail: text,
      fix: 'set this host clock right (NTP): S3 refuses requests over 15 min off',
    };
  if (Math.abs(skew) > WARN_SKEW_MS)
    return { id: 'clock', status: 'warn', detail: text, fix: 'run NTP on this host' };
  return ok('clock', text);
}

/** Two 1 KiB parts: AWS refuses to complete them (EntityTooSmall: parts but the last >= 5 MiB). */
async function checkMultipart(t: MultipartTarget, key: string): Promise<CheckResult> {
  const wrote = [key];
  const Bucket = t.bucket;
  const Key = t.prefix + key;
  let uploadId: string | undefined;
  try {
    uploadId = (await t.client.send(new CreateMultipartUploadCommand({ Bucket, Key }))).UploadId;
    const part = Buffer.alloc(1024, 0x6c);
    const parts = [];
    for (const n of [1, 2]) {
      const out = await t.client.send(
        new UploadPartCommand({ Bucket, Key, UploadId: uploadId, PartNumber: n, Body: part }),
      );
      parts.push({ PartNumber: n, ETag: out.ETag });
    }
    const listed = await listUploadParts(t, key, uploadId!).catch(() => undefined);
    const resume =
      listed?.length === 2
        ? 'lists parts, so a killed upload resumes'
        : 'cannot list parts, so a killed upload starts over';
    try {
      await t.client.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
      uploadId = undefined;
      return {
        id: 'multipart',
        status: 'ok',
        detail: `works; parts under 5 MiB accepted (no minimum enforced); ${resume}`,
        wrote,
      };
    } catch (err) {
      if (errorCodeOf(err) !== 'EntityTooSmall') throw err;
      return {
        id: 'multipart',
        status: 'ok',
        detail: `works; 5 MiB minimum part size enforced (as AWS); ${resume}`,
        wrote,
      };
    }
  } catch (err) {
    const fix =
      'allow multipart uploads (s3:PutObject, s3:AbortMultipartUpload, s3:ListMultipartUploadParts)';
    return { id: 'multipart', status: 'fail', detail: `${errorCodeOf(err) ?? messageOf(err)}`, fix, wrote };
  } finally {
    if (uploadId !== undefined)
      await t.client
        .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId }))
        .catch(() => undefined);
    // A completed upload is an object: removed like every other key doctor wrote.
    await t.client.send(new DeleteObjectCommand({ Bucket, Key })).catch(() => undefined);
  }
}

/**
 * loft sends Content-MD5 with every part (s3-part-upload.ts): a server that checks it refuses a part
 * damaged on the way. A wrong digest must be refused (BadDigest / InvalidDigest).
 */
async function checkContentMd5(
  client: S3Client,
  store: S3ObjectStore,
  bucket: string,
  prefix: string,
  key: string,
): Promise<CheckResult> {
  const wrong = createHash('md5').update('something else').digest('base64');
  const wrote = [key];
  try {
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: prefix + key, Body: 'loft doctor\n', ContentMD5: wrong }),
    );
    return {
      id: 'checksum',
      status: 'warn',
      detail: 'Content-MD5 is not checked: a wrong digest was stored',
      fix: 'nothing needed for loft (bodies go without aws-chunked trailers), but damage on the way goes unnoticed by the server',
      wrote,
    };
  } catch (err) {
    const code = errorCodeOf(err) ?? `HTTP ${httpStatusOf(err) ?? '?'}`;
    if (code === 'BadDigest' || code === 'InvalidDigest')
      return { id: 'checksum', status: 'ok', detail: `Content-MD5 checked (a wrong one got ${code})`, wrote };
    return { id: 'checksum', status: 'warn', detail: `a PUT with Content-MD5 failed: ${code}`, wrote };
  } finally {
    await store.deleteMany([key]).catch(() => undefined);
  }
}

function ok(id: string, detail: string): CheckResult {
  return { id, status: 'ok', detail };
}
