// A change of signing key must be visible in the cache (issue 11): paths uploaded unsigned (no key,
// or a typo that used to drop the key) or under an old key are "present", yet a Nix that requires
// the new key refuses them. A run that signs adds its signature to such narinfos in place, with one
// GET each and no NAR written again; then Nix, trusting only the new key, substitutes everything.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { buildFixtureClosure, type FixtureCase } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, requireNix } from '../helpers/nix-env.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import type { TestS3 } from '../helpers/s3-server.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import {
  bucketNarInfo,
  closureOf,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
  writeConfig,
} from '../helpers/upload-env.js';
import { skipTest } from '../helpers/skip.js';

describe('a run with a new signing key re-signs present narinfos, NARs untouched', () => {
  let testEnv: IntegrationEnv | undefined;
  let dir: string;
  let s3: TestS3;
  let keyA: KeyFiles;
  let keyB: KeyFiles;
  let fixtures: Record<FixtureCase, string>;
  let roots: string[];
  let closure: string[];

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-resign-', 'loft-resign-a-1');
    ({ dir, s3, key: keyA } = testEnv);
    keyB = await makeNixKey(dir, 'loft-resign-b-1');
    fixtures = await buildFixtureClosure({ largeFileMb: 0 });
    roots = [fixtures.top, fixtures.caUser];
    closure = await closureOf(roots);
  });
  after(async () => {
    if (!hasNix()) return;
    await testEnv?.close(Object.values(fixtures ?? {}));
  });

  /** PUTs and GETs per kind of key since `from` (index into the recorded requests). */
  function requestsSince(from: number) {
    const reqs = s3.requests.slice(from).filter((r) => r.key !== '');
    const count = (method: string, test: (k: string) => boolean) =>
      reqs.filter((r) => r.method === method && test(r.key)).length;
    return {
      narPuts: count('PUT', (k) => k.startsWith('nar/')) + count('POST', (k) => k.startsWith('nar/')),
      narinfoPuts: count('PUT', (k) => k.endsWith('.narinfo')),
      narinfoGets: count('GET', (k) => k.endsWith('.narinfo')),
    };
  }

  test('unsigned, then key A, then key B: each run signs what is there; Nix trusting B substitutes all', async (t) => {
    if (!requireNix(t)) return;
    const n = closure.length;
    const unsigned = await writeConfig({ dir, s3 });
    const first = await runLoft(['-c', unsigned, '--upload-path', ...roots]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^unsigned: no signing key configured/m);
    assert.equal((await bucketNarInfo(s3, hashPartOfPath(fixtures.top)))?.signatures.length, 0);

    for (const key of [keyA, keyB]) {
      if (s3.external) return skipTest(t, 'in-process-s3', 'counts requests: needs the in-process S3 server');
      const mark = s3.requests.length;
      const config = await writeConfig({ dir, s3, signingKeyPath: key.secretPath });
      const run = await runLoft(['-c', config, '--upload-path', ...roots]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stdout,
        new RegExp(`uploaded 0 paths .*, ${n} already present \\(${n} paths re-signed`),
      );
      assert.deepEqual(requestsSince(mark), { narPuts: 0, narinfoPuts: n, narinfoGets: n });
      // Known to be signed now: a second run asks nothing and writes nothing.
      const again = s3.requests.length;
      const rerun = await runLoft(['-c', config, '--upload-path', ...roots]);
      assert.match(rerun.stdout, new RegExp(`, ${n} already present, `));
      assert.deepEqual(requestsSince(again), { narPuts: 0, narinfoPuts: 0, narinfoGets: 0 });
    }
    const names = (await bucketNarInfo(s3, hashPartOfPath(fixtures.top)))?.signatures.map(
      (s) => s.split(':')[0],
    );
    assert.deepEqual(names, [keyB.name, keyA.name]);
    const check = await checkBucket(s3, { publicKey: keyB.publicKey });
    assert.deepEqual(check.violations, []);
    await deleteLocally(closure, Object.values(fixtures));
    await substitute(roots, httpCacheUrl(s3), keyB.publicKey);
  });
});
