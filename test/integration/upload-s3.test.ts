// loft --upload-path end to end: the built CLI, the machine's Nix, s3rver in-process. Afterwards
// the local copies are deleted and real Nix substitutes everything back over HTTP, checking our
// signatures and NarHashes, and `nix store verify` passes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildFixtureClosure, type FixtureCase } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, requireNix } from '../helpers/nix-env.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import { S3_KINDS, skipUnlessAvailable } from '../helpers/moto-server.js';
import { skipTest } from '../helpers/skip.js';
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
} from '../helpers/upload-env.js';

for (const kind of S3_KINDS) {
  describe(
    `loft --upload-path to S3 (zstd) on ${kind}, then Nix substitutes it back`,
    { skip: skipUnlessAvailable(kind) },
    () => {
      let testEnv: IntegrationEnv | undefined;
      let dir: string;
      let s3: TestS3;
      let key: KeyFiles;
      let config: string;
      let fixtures: Record<FixtureCase, string>;
      let roots: string[];
      let closure: string[];

      before(async () => {
        if (!hasNix()) return;
        testEnv = await startIntegrationEnv('loft-upload-s3-', 'loft-test-1', kind);
        ({ dir, s3, key } = testEnv);
        config = await testEnv.config();
        fixtures = await buildFixtureClosure({ largeFileMb: 12 });
        roots = [fixtures.top, fixtures.tree, fixtures.symlinkOut, fixtures.large, fixtures.caUser];
        closure = await closureOf(roots);
      });
      after(async () => {
        if (!hasNix()) return;
        await testEnv?.close(Object.values(fixtures ?? {}));
      });

      test('uploads every closure member: NAR then narinfo, one PUT per small NAR, multipart for the large one', async (t) => {
        if (!requireNix(t)) return;
        const run = await runLoft(['-c', config, '--upload-path', ...roots]);
        assert.equal(run.code, 0, run.stderr);
        assert.ok(
          !run.stderr.includes('NodeVersionSupportWarning'),
          'the SDK prints no Node version warning on a supported Node',
        );
        assert.match(run.stdout, new RegExp(`uploaded ${closure.length} paths`));
        const objects = await bucketObjects(s3);
        assert.ok(objects.has('nix-cache-info'));
        for (const p of closure) {
          const ni = await bucketNarInfo(s3, hashPartOfPath(p));
          assert.ok(ni, `narinfo of ${p}`);
          assert.equal(ni.storePath, p);
          assert.equal(ni.compression, 'zstd');
          assert.ok(objects.has(ni.url), `NAR ${ni.url}`);
          assert.equal(objects.get(ni.url), ni.fileSize);
          // NarHash, then an id of its own per upload (src/format/bucket-layout.ts).
          assert.match(
            ni.url,
            new RegExp(`^nar/${hashPartOfPath(p)}-[0-9a-z]{52}-[0-9a-df-np-sv-z]{8}\\.nar\\.zst$`),
          );
          assert.ok(ni.signatures.some((s) => s.startsWith('loft-test-1:')));
        }
        if (s3.external)
          return skipTest(t, 'in-process-s3', 'request counts are recorded only by the in-process s3rver');
        const puts = s3.requests.filter((r) => r.method === 'PUT' || r.method === 'POST');
        const largeHash = hashPartOfPath(fixtures.large);
        for (const p of closure) {
          const h = hashPartOfPath(p);
          const narPuts = puts.filter((r) => r.key.startsWith(`nar/${h}-`));
          if (h === largeHash)
            assert.ok(
              narPuts.some((r) => r.query.has('uploads')),
              'multipart for the large NAR',
            );
          else assert.equal(narPuts.length, 1, `one PUT for the NAR of ${p}`);
          assert.equal(puts.filter((r) => r.key === `${h}.narinfo`).length, 1);
        }
      });

      test('a second run uploads nothing; an empty local cache re-learns from the bucket', async (t) => {
        if (!requireNix(t)) return;
        const before = s3.requests.length;
        const again = await runLoft(['-c', config, '--upload-path', ...roots]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, new RegExp(`uploaded 0 paths .* ${closure.length} already present`));
        const writes = (from: number) =>
          s3.requests.slice(from).filter((r) => r.method !== 'GET' && r.method !== 'HEAD').length;
        if (!s3.external) {
          assert.equal(writes(before), 0);
          // With the presence cache warm, the bucket is not asked anything at all.
          assert.equal(s3.requests.length - before, 0, 'no request on a fully cached run');
        }
        await rm(join(dir, 'cache.db'));
        const mark = s3.requests.length;
        const relearn = await runLoft(['-c', config, '--upload-path', ...roots]);
        assert.equal(relearn.code, 0, relearn.stderr);
        assert.match(relearn.stdout, /uploaded 0 paths/);
        if (!s3.external) assert.equal(writes(mark), 0);
      });

      test('real Nix substitutes every path with our signature required, and nix store verify passes', async (t) => {
        if (!requireNix(t)) return;
        await deleteLocally(closure, Object.values(fixtures));
        await substitute(roots, httpCacheUrl(s3), key.publicKey);
        await verifyClosure(roots, key.publicKey);
      });
    },
  );
}
