// The network between loft and the bucket failing on purpose (test/helpers/fault-proxy.ts): with a
// fifth of the requests broken in every way the proxy knows, a 100-path closure still uploads
// completely and the bucket passes every invariant (test/helpers/bucket-invariants.ts), and real
// Nix substitutes all of it with our key required. When a fault never goes away, loft stops with
// one line per failed path and a non-zero exit, and publishes no narinfo whose NAR is missing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBucket, committedWrites, keysWrittenTwice } from '../helpers/bucket-invariants.js';
import { FAULT_KINDS, isMultipartRequest, startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { randomSalt } from '../helpers/fixtures.js';
import { logLines, runLoft, type LoftRun } from '../helpers/loft-cli.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import type { TestS3 } from '../helpers/s3-server.js';
import type { KeyFiles } from '../helpers/signing-keys.js';
import {
  closureOf,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
  verifyClosure,
  writeConfig,
} from '../helpers/upload-env.js';
import { skipTest } from '../helpers/skip.js';

const WIDE_NIX = fileURLToPath(new URL('../fixtures/wide-closure.nix', import.meta.url));

interface Wide {
  root: string;
  drv: string;
  /** The closure, references first (as `nix-store --query --requisites` prints it). */
  closure: string[];
}

/** Builds test/fixtures/wide-closure.nix: width small paths + a large one + the root, in one build. */
async function buildWide(width: number, largeFileMb: number): Promise<Wide> {
  const args = [
    '--argstr',
    'salt',
    randomSalt(),
    '--arg',
    'width',
    String(width),
    '--arg',
    'largeFileMb',
    String(largeFileMb),
  ];
  const { stdout: drv } = await nixBin(['nix-instantiate', WIDE_NIX, ...args]);
  const { stdout } = await nixBin(['nix-store', '--realise', '--', drv.trim()]);
  const root = stdout.split('\n').find((l) => /-loft-wide$/.test(l));
  assert.ok(root, `no root output in: ${stdout}`);
  return { root, drv: drv.trim(), closure: await closureOf([root]) };
}

/**
 * Deletes the closure in one call, referrers first (Nix 2.8 then deletes all of it; one call per
 * path would take seconds for 100 paths), then the derivation. Throws if a member survived.
 */
async function deleteWide(w: Wide, strict: boolean): Promise<void> {
  try {
    await nixBin(['nix-store', '--delete', '--', ...[...w.closure].reverse().filter((p) => existsSync(p))]);
    await nixBin(['nix-store', '--delete', '--', w.drv]);
  } catch (err) {
    if (strict) throw err;
  }
  const left = w.closure.filter((p) => existsSync(p));
  if (strict && left.length > 0) throw new Error(`could not delete from the local store: ${left.join(' ')}`);
}

/** Retries loft logged at debug level: single S3 requests (SDK) and whole paths (uploader). */
function retriesOf(run: LoftRun): { requests: number; paths: number } {
  const lines = logLines(run.stderr);
  return {
    requests: lines.filter((l) => l['msg'] === 'retrying S3 request').length,
    paths: lines.filter((l) => l['msg'] === 'upload failed, retrying').length,
  };
}

function describeFaults(proxy: FaultProxy): string {
  const s = proxy.stats();
  const kinds = FAULT_KINDS.map((k) => `${k} ${s.byKind[k]}`).join(', ');
  const pct = s.requests === 0 ? 0 : Math.round((1000 * s.faulted) / s.requests) / 10;
  return `${s.requests} requests, ${s.faulted} faults injected (${pct}%): ${kinds}`;
}

describe('network faults between loft and the bucket', () => {
  let testEnv: IntegrationEnv | undefined;
  let dir: string;
  let s3: TestS3;
  let key: KeyFiles;
  const built: Wide[] = [];

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-faults-net-', 'loft-faults-1');
    ({ dir, s3, key } = testEnv);
  });
  after(async () => {
    if (!hasNix()) return;
    // The wide closures have their own deletion (one call, referrers first), not close()'s.
    for (const w of built) await deleteWide(w, false);
    await testEnv?.close();
  });

  async function setUp(width: number, largeFileMb: number): Promise<Wide> {
    const wide = await buildWide(width, largeFileMb);
    built.push(wide);
    return wide;
  }

  test('20% of requests failing: a 100-path closure uploads, the bucket is consistent, Nix substitutes it', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'needs the in-process server behind the fault proxy');
    const wide = await setUp(98, 12);
    assert.equal(wide.closure.length, 100);
    // Multipart requests are few (create, 3 parts, complete): at 20% a run would often break none
    // of them, so the first part upload always breaks, whatever the draw.
    let firstPart = true;
    const proxy = await startFaultProxy(s3.backend, {
      rate: 0.2,
      rateFor: (r) => {
        if (!firstPart || !r.query.has('partNumber')) return 0.2;
        firstPart = false;
        return 1;
      },
      seed: 20240607,
    });
    t.after(() => proxy.close());
    const cfg = await writeConfig({
      dir: await mkdtemp(join(dir, 'rate20-')),
      s3: { ...s3, endpoint: proxy.endpoint },
      signingKeyPath: key.secretPath,
      // Stalls are only noticed when the idle timeout passes; 2 s keeps the run short.
      extraS3: 'max_attempts = 10\nrequest_timeout_secs = 2',
    });
    const run = await runLoft(['-c', cfg, '--debug', '--upload-path', wide.root], { timeoutMs: 120_000 });
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr.slice(-4000)}`);
    assert.match(run.stdout, /uploaded 100 paths/);

    const stats = proxy.stats();
    for (const kind of FAULT_KINDS) assert.ok(stats.byKind[kind] > 0, `no ${kind} fault was injected`);
    const multipartFaults = proxy.requests.filter((r) => r.fault !== undefined && isMultipartRequest(r));
    assert.ok(multipartFaults.length > 0, 'no fault hit the multipart upload');
    // About 20%: the bound sits four standard deviations below it, so chance alone never trips it.
    assert.ok(stats.faulted / stats.requests >= 0.13, describeFaults(proxy));

    const check = await checkBucket(s3, { publicKey: key.publicKey });
    assert.deepEqual(check.violations, []);
    assert.deepEqual(check.storePaths, [...wide.closure].sort(), 'every closure member has a narinfo');

    const retries = retriesOf(run);
    t.diagnostic(
      `faults (20% target): ${describeFaults(proxy)}; ${multipartFaults.length} hit multipart requests`,
    );
    t.diagnostic(`retries: ${retries.requests} S3 request retries, ${retries.paths} whole-path retries`);
    t.diagnostic(
      `bucket check: ${check.narinfos} narinfos, ${check.narsVerified} NARs verified, 0 violations`,
    );
    const again = keysWrittenTwice(committedWrites(proxy.requests)).length;
    t.diagnostic(`${again} objects were written twice because the answer to the first write was lost`);

    await deleteWide(wide, true);
    await substitute([wide.root], httpCacheUrl(s3), key.publicKey);
    await verifyClosure([wide.root], key.publicKey);
  });

  test('the answer to a completed multipart upload is lost: the path is sent again and published once', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'needs the in-process server behind the fault proxy');
    const wide = await setUp(2, 12);
    // The server completes the upload, then the connection drops before its answer arrives: the
    // SDK's retry of CompleteMultipartUpload finds no such upload any more (HTTP 404).
    let first = true;
    const proxy = await startFaultProxy(s3.backend, {
      rate: 0,
      rateFor: () => {
        const rate = first ? 1 : 0;
        first = false;
        return rate;
      },
      seed: 1,
      weights: { 'reset-response': 1 },
      select: (r) => r.method === 'POST' && r.query.has('uploadId'),
    });
    t.after(() => proxy.close());
    const cfg = await writeConfig({
      dir: await mkdtemp(join(dir, 'complete-')),
      s3: { ...s3, endpoint: proxy.endpoint },
      signingKeyPath: key.secretPath,
    });
    const run = await runLoft(['-c', cfg, '--upload-path', wide.root], { timeoutMs: 60_000 });
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.equal(proxy.stats().byKind['reset-response'], 1);
    const completes = proxy.requests.filter((r) => r.method === 'POST' && r.query.has('uploadId'));
    assert.ok(completes.length >= 3, 'completed, retried (404), then completed again by the path retry');
    assert.equal(retriesOf(run).paths, 1, 'the path was sent again once');
    const check = await checkBucket(s3, { publicKey: key.publicKey });
    assert.deepEqual(check.violations, []);
    const narinfoWrites = [...committedWrites(proxy.requests)].filter(([k]) => k.endsWith('.narinfo'));
    assert.ok(narinfoWrites.length === wide.closure.length && narinfoWrites.every(([, n]) => n === 1));
  });

  test('narinfo PUTs that always fail: exit 1, one line per failed path, no narinfo without its NAR', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'needs the in-process server behind the fault proxy');
    const wide = await setUp(6, 0);
    const proxy = await startFaultProxy(s3.backend, {
      rate: 1,
      seed: 7,
      weights: { 'http-500': 1 },
      select: (r) => r.method === 'PUT' && r.key.endsWith('.narinfo'),
    });
    t.after(() => proxy.close());
    const cfg = await writeConfig({
      dir: await mkdtemp(join(dir, 'always-')),
      s3: { ...s3, endpoint: proxy.endpoint },
      signingKeyPath: key.secretPath,
      extraS3: 'max_attempts = 2\nrequest_timeout_secs = 2',
    });
    const run = await runLoft(['-c', cfg, '--upload-path', wide.root], { timeoutMs: 60_000 });
    assert.equal(run.code, 1, run.stderr);
    const failures = run.stdout.split('\n').filter((l) => l.startsWith('failed '));
    assert.equal(failures.length, wide.closure.length, run.stdout);
    for (const line of failures) assert.match(line, /^failed \/nix\/store\/\S+: \S.*$/);
    assert.ok(
      failures.some((l) => /InternalError, HTTP 500/.test(l)),
      `no failure names the server's error: ${failures.join('\n')}`,
    );
    assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');

    const check = await checkBucket(s3, { publicKey: key.publicKey });
    assert.deepEqual(check.violations, []);
    const written = committedWrites(proxy.requests);
    for (const p of wide.closure) {
      assert.ok(!written.has(`${hashPartOfPath(p)}.narinfo`), `narinfo of ${p} was published`);
    }
    const s = proxy.stats();
    t.diagnostic(`persistent faults: ${describeFaults(proxy)}; ${retriesOf(run).paths} whole-path retries`);
    assert.ok(s.byKind['http-500'] >= 2, 'the narinfo PUTs were refused');
  });
});
