// Throttling as S3 does it (503 SlowDown with Retry-After above a request rate), through a proxy in
// front of s3rver (test/helpers/throttle-proxy.ts): no retry of a throttled request comes before
// its Retry-After, in seconds or as an HTTP-date, and nothing is lost. The built CLI is checked the
// same way with a whole closure. Needs the in-process s3rver: the proxy cannot forward to an
// external endpoint without breaking the signature over its Host header.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { buildFixtureClosure, randomSalt } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { requireNix } from '../helpers/nix-env.js';
import { startS3Server, storeOptionsFor, type TestS3 } from '../helpers/s3-server.js';
import { startThrottleProxy, type ThrottleProxy } from '../helpers/throttle-proxy.js';
import { bucketObjects, closureOf, hashPartOfPath, writeConfig } from '../helpers/upload-env.js';

const external = Boolean(process.env.LOFT_TEST_S3_ENDPOINT);
const skip = external ? 'needs the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)' : false;

let s3: TestS3;
const proxies: ThrottleProxy[] = [];

async function throttled(retryAfter?: (now: number) => string): Promise<ThrottleProxy> {
  const proxy = await startThrottleProxy({
    target: s3.endpoint,
    ratePerSecond: 20,
    burst: 4,
    latencyMs: 20,
    ...(retryAfter ? { retryAfter } : {}),
  });
  proxies.push(proxy);
  return proxy;
}

/** Puts `n` objects of 16 KiB, 8 at a time, through `endpoint`; returns what was sent. */
async function putMany(endpoint: string, prefix: string, n: number): Promise<Map<string, Buffer>> {
  // Short jitter: what the test measures is the Retry-After floor, not BACKOFF.throttled's window.
  const store = new S3ObjectStore({
    ...storeOptionsFor(s3),
    endpoint,
    maxAttempts: 10,
    retryBaseDelayMs: 20,
    retryMaxDelayMs: 100,
  });
  const sent = new Map<string, Buffer>();
  for (let i = 0; i < n; i++) sent.set(`${prefix}/o${i}`, randomBytes(16 * 1024));
  const keys = [...sent.keys()];
  const worker = async () => {
    for (let k = keys.shift(); k !== undefined; k = keys.shift()) {
      await store.putBytes(k, sent.get(k)!, { contentType: 'application/octet-stream' });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await store.close();
  return sent;
}

async function assertStored(sent: Map<string, Buffer>): Promise<void> {
  const store = new S3ObjectStore(storeOptionsFor(s3));
  for (const [key, body] of sent) assert.deepEqual(await store.get(key), body, `${key} stored whole`);
  await store.close();
}

describe('S3 requests against a throttling server', { skip }, () => {
  before(async () => {
    s3 = await startS3Server();
  });
  after(async () => {
    for (const p of proxies) await p.close();
    await s3?.close();
  });

  test('Retry-After: 2 is a floor for every retry of a throttled request; nothing is lost', async () => {
    const proxy = await throttled();
    const sent = await putMany(proxy.endpoint, 'seconds', 40);
    assert.ok(proxy.throttled() > 0, 'the proxy throttled some requests');
    assert.deepEqual(proxy.earlyRetries(), [], 'no retry came before its Retry-After');
    await assertStored(sent);
  });

  test('Retry-After as an HTTP-date is honoured too', async () => {
    // Whole seconds only in an HTTP-date: 3 s ahead is at least 2 s after the answer.
    const proxy = await throttled((now) => new Date(now + 3000).toUTCString());
    const sent = await putMany(proxy.endpoint, 'date', 20);
    assert.ok(proxy.throttled() > 0, 'the proxy throttled some requests');
    assert.deepEqual(proxy.earlyRetries(), [], 'no retry came before its Retry-After date');
    await assertStored(sent);
  });

  test('the CLI uploads a closure through the throttling proxy, no retry early', async (t) => {
    if (!requireNix(t)) return;
    const proxy = await throttled();
    const dir = await mkdtemp(join(tmpdir(), 'loft-throttle-'));
    try {
      const fixture = await buildFixtureClosure({ salt: randomSalt() });
      const top = fixture.top;
      const closure = await closureOf([top]);
      const config = await writeConfig({
        dir,
        s3: { ...s3, endpoint: proxy.endpoint },
        extraS3: 'max_attempts = 10',
      });
      const run = await runLoft(['-c', config, '--upload-path', top]);
      assert.equal(run.code, 0, run.stderr);
      assert.ok(proxy.throttled() > 0, 'the proxy throttled some of the upload');
      assert.deepEqual(proxy.earlyRetries(), []);
      const objects = await bucketObjects(s3);
      for (const p of closure) assert.ok(objects.has(`${hashPartOfPath(p)}.narinfo`), `${p} published`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
