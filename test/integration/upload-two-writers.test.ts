// Two loft processes (two hosts: separate presence databases) uploading overlapping closures into
// one bucket at the same time, through a proxy that breaks a tenth of their requests (500s, 503
// SlowDown, resets, stalls, short answers: test/helpers/fault-proxy.ts). Uploads are idempotent
// (the NAR key comes from the NarHash, the narinfo is written last), so the bucket must end
// consistent (test/helpers/bucket-invariants.ts) and Nix must substitute all of it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { FAULT_KINDS, startFaultProxy } from '../helpers/fault-proxy.js';
import { buildFixtureClosure, type FixtureCase } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, requireNix } from '../helpers/nix-env.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import type { TestS3 } from '../helpers/s3-server.js';
import type { KeyFiles } from '../helpers/signing-keys.js';
import {
  bucketNarInfo,
  bucketObjects,
  closureOf,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
  verifyClosure,
  writeConfig,
} from '../helpers/upload-env.js';
import { skipTest } from '../helpers/skip.js';

describe('two writers, one bucket', () => {
  let testEnv: IntegrationEnv | undefined;
  let dir: string;
  let s3: TestS3;
  let key: KeyFiles;
  let f: Record<FixtureCase, string>;

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-two-writers-', 'loft-two-writers-1');
    ({ dir, s3, key } = testEnv);
    f = await buildFixtureClosure({ largeFileMb: 12 });
  });
  after(async () => {
    if (!hasNix()) return;
    await testEnv?.close(Object.values(f ?? {}));
  });

  test('overlapping closures uploaded at once through 10% faults leave a consistent bucket that Nix substitutes', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'needs the in-process server behind the fault proxy');
    const proxy = await startFaultProxy(s3.backend, { rate: 0.1, seed: 1010 });
    t.after(() => proxy.close());
    // Stalls end when the idle timeout passes: 2 s keeps the run short.
    const faulty = {
      s3: { ...s3, endpoint: proxy.endpoint },
      extraS3: 'max_attempts = 10\nrequest_timeout_secs = 2',
    };
    const hostA = await writeConfig({
      dir: await mkdtemp(join(dir, 'a-')),
      ...faulty,
      signingKeyPath: key.secretPath,
    });
    const hostB = await writeConfig({
      dir: await mkdtemp(join(dir, 'b-')),
      ...faulty,
      signingKeyPath: key.secretPath,
    });
    const rootsA = [f.top, f.large, f.tree];
    const rootsB = [f.top, f.large, f.symlinkOut, f.caUser];
    const [a, b] = await Promise.all([
      runLoft(['-c', hostA, '--upload-path', ...rootsA]),
      runLoft(['-c', hostB, '--upload-path', ...rootsB]),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const roots = [...new Set([...rootsA, ...rootsB])];
    const closure = await closureOf(roots);
    const objects = await bucketObjects(s3);
    for (const p of closure) {
      const ni = await bucketNarInfo(s3, hashPartOfPath(p));
      assert.ok(ni, `narinfo of ${p}`);
      assert.equal(objects.get(ni.url), ni.fileSize, `NAR of ${p} has the size its narinfo names`);
      for (const ref of ni.references)
        assert.ok(objects.has(`${ref.slice(0, 32)}.narinfo`), `reference ${ref}`);
    }
    const check = await checkBucket(s3, { publicKey: key.publicKey });
    assert.deepEqual(check.violations, []);
    const stats = proxy.stats();
    assert.ok(stats.faulted > 0, 'no fault was injected');
    const kinds = FAULT_KINDS.map((k) => `${k} ${stats.byKind[k]}`).join(', ');
    t.diagnostic(`two writers: ${stats.requests} requests, ${stats.faulted} faults injected (${kinds})`);
    t.diagnostic(
      `bucket check: ${check.narinfos} narinfos, ${check.narsVerified} NARs verified, 0 violations`,
    );
    await deleteLocally(closure, Object.values(f));
    await substitute(roots, httpCacheUrl(s3), key.publicKey);
    await verifyClosure(roots, key.publicKey);
  });
});
