// How many 503 SlowDown answers an upload provokes from a server that throttles above a request
// rate, with loft's adaptive limit on S3 requests in flight (src/storage/request-limiter.ts) and
// with the callers' fixed concurrency. Both runs store the same objects through the same
// throttling proxy (test/helpers/throttle-proxy.ts: a token bucket, 503 with Retry-After: 2, a
// fixed latency per forwarded request) in front of an in-process s3rver; each run's objects are
// read back and compared, so "same bytes, nothing lost" is checked, not assumed.
//   node --import tsx bench/throttle.bench.ts [--objects 400] [--kib 64] [--concurrency 16]
//     [--rate 40] [--burst 10] [--latency-ms 50] [--runs 3]
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { S3ObjectStore } from '../src/storage/s3-object-store.js';
import { startS3Server, storeOptionsFor, type TestS3 } from '../test/helpers/s3-server.js';
import { startThrottleProxy } from '../test/helpers/throttle-proxy.js';

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '400' },
    kib: { type: 'string', default: '64' },
    concurrency: { type: 'string', default: '16' },
    rate: { type: 'string', default: '40' },
    burst: { type: 'string', default: '10' },
    'latency-ms': { type: 'string', default: '50' },
    runs: { type: 'string', default: '3' },
  },
});
const N = Number(values.objects);
const KIB = Number(values.kib);
const CONCURRENCY = Number(values.concurrency);
const RUNS = Number(values.runs);

interface RunResult {
  mode: 'adaptive' | 'fixed';
  throttled: number;
  forwarded: number;
  seconds: number;
  storedBytes: number;
  lost: number;
  earlyRetries: number;
}

async function run(s3: TestS3, adaptive: boolean, prefix: string, bodies: Buffer[]): Promise<RunResult> {
  const proxy = await startThrottleProxy({
    target: s3.endpoint,
    ratePerSecond: Number(values.rate),
    burst: Number(values.burst),
    latencyMs: Number(values['latency-ms']),
  });
  const store = new S3ObjectStore({
    ...storeOptionsFor(s3),
    endpoint: proxy.endpoint,
    maxAttempts: 20,
    adaptiveConcurrency: adaptive,
  });
  const keys = bodies.map((_, i) => `${prefix}/o${i}`);
  const queue = keys.map((k, i) => [k, bodies[i]!] as const);
  const failed: string[] = [];
  const started = performance.now();
  const worker = async () => {
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
      await store
        .putBytes(job[0], job[1], { contentType: 'application/octet-stream' })
        .catch(() => failed.push(job[0]));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;
  await store.close();
  await proxy.close();
  const reader = new S3ObjectStore(storeOptionsFor(s3));
  let storedBytes = 0;
  let lost = 0;
  for (const [i, key] of keys.entries()) {
    const got = await reader.get(key);
    if (got === undefined || !got.equals(bodies[i]!)) lost++;
    else storedBytes += got.length;
  }
  await reader.close();
  return {
    mode: adaptive ? 'adaptive' : 'fixed',
    throttled: proxy.throttled(),
    forwarded: proxy.seen.length - proxy.throttled(),
    seconds,
    storedBytes,
    lost,
    earlyRetries: proxy.earlyRetries().length,
  };
}

async function main(): Promise<void> {
  const s3 = await startS3Server();
  const bodies = Array.from({ length: N }, () => randomBytes(KIB * 1024));
  const results: RunResult[] = [];
  try {
    for (let r = 0; r < RUNS; r++) {
      // Alternate the order, so neither mode always runs on a warmer server.
      for (const adaptive of r % 2 === 0 ? [true, false] : [false, true]) {
        results.push(await run(s3, adaptive, `run${r}-${adaptive ? 'a' : 'f'}`, bodies));
      }
    }
  } finally {
    await s3.close();
  }
  console.log(
    `${N} objects of ${KIB} KiB, ${CONCURRENCY} at a time; proxy: ${values.rate} req/s, burst ${values.burst}, ` +
      `${values['latency-ms']} ms latency, 503 SlowDown with Retry-After: 2\n`,
  );
  console.log(
    '| mode | 503 answers | forwarded requests | seconds | bytes stored | lost | retries before Retry-After |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(
      `| ${r.mode} | ${r.throttled} | ${r.forwarded} | ${r.seconds.toFixed(1)} | ${r.storedBytes} | ${r.lost} | ${r.earlyRetries} |`,
    );
  }
}

await main();
