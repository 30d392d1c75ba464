// A re-push from a host with empty local state (a CI runner) reads the bucket's signed records
// (src/upload/signed-ledger.ts) instead of GETting every present narinfo, through the built CLI
// and s3rver; a narinfo another writer replaced since is still read and re-signed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { renderNarInfo } from '../../src/format/narinfo.js';
import { SIGNED_PREFIX } from '../../src/format/signed-record.js';
import { verifySignature } from '../../src/format/signing-key.js';
import { fingerprintOfParsed } from '../../src/format/fingerprint.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { buildFixtureClosure, type FixtureCase } from '../helpers/fixtures.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, requireNix } from '../helpers/nix-env.js';
import type { TestS3 } from '../helpers/s3-server.js';
import { storeOptionsFor } from '../helpers/s3-server.js';
import { parsePublicKey } from '../../src/format/signing-key.js';
import { skipTest } from '../helpers/skip.js';
import {
  bucketNarInfo,
  closureOf,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
  writeConfig,
} from '../helpers/upload-env.js';

describe('signed records spare a re-push with empty local state its narinfo GETs', () => {
  let testEnv: IntegrationEnv | undefined;
  let dir: string;
  let s3: TestS3;
  let fixtures: Record<FixtureCase, string>;
  let roots: string[];
  let closure: string[];

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-signed-records-', 'loft-signed-records-1');
    ({ dir, s3 } = testEnv);
    fixtures = await buildFixtureClosure({ largeFileMb: 0 });
    roots = [fixtures.top, fixtures.caUser];
    closure = await closureOf(roots);
  });
  after(async () => {
    if (!hasNix()) return;
    await testEnv?.close(Object.values(fixtures ?? {}));
  });

  const forgetLocalState = () =>
    Promise.all(['cache.db', 'cache.db-wal', 'cache.db-shm'].map((f) => rm(join(dir, f), { force: true })));

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

  test('no narinfo GET on a re-push; a narinfo rewritten without our signature is read and re-signed', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external) return skipTest(t, 'in-process-s3', 'counts requests: needs the in-process S3 server');
    const key = testEnv!.key;
    const n = closure.length;
    const config = await writeConfig({ dir, s3, signingKeyPath: key.secretPath });
    const first = await runLoft(['-c', config, '--upload-path', ...roots]);
    assert.equal(first.code, 0, first.stderr);
    const store = new S3ObjectStore(storeOptionsFor(s3));
    t.after(() => store.close());
    const records: string[] = [];
    for await (const o of store.list(SIGNED_PREFIX)) records.push(o.key);
    assert.equal(records.length, 1, 'the first run wrote its record');

    await forgetLocalState();
    let mark = s3.requests.length;
    const again = await runLoft(['-c', config, '--upload-path', ...roots]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`uploaded 0 paths .*, ${n} already present`));
    assert.deepEqual(requestsSince(mark), { narPuts: 0, narinfoPuts: 0, narinfoGets: 0 });

    // Another writer (an uploader without our key, the original Loft with its key file missing)
    // writes the top path's narinfo again, unsigned.
    const top = hashPartOfPath(fixtures.top);
    const narinfo = (await bucketNarInfo(s3, top))!;
    await store.putBytes(`${top}.narinfo`, renderNarInfo({ ...narinfo, signatures: [] }), {
      contentType: 'text/x-nix-narinfo',
    });
    await forgetLocalState();
    mark = s3.requests.length;
    const third = await runLoft(['-c', config, '--upload-path', ...roots]);
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stdout, new RegExp(`${n} already present \\(1 path re-signed`));
    assert.deepEqual(requestsSince(mark), { narPuts: 0, narinfoPuts: 1, narinfoGets: 1 });
    const fixed = (await bucketNarInfo(s3, top))!;
    const fp = fingerprintOfParsed(
      fixed.storePath,
      fixed.narHash,
      fixed.narSize,
      fixed.references.map((r) => `/nix/store/${r}`),
    );
    assert.ok(fixed.signatures.some((s) => verifySignature(parsePublicKey(key.publicKey), fp, s)));

    // The re-signed narinfo's new ETag was recorded too: the next empty-state run reads nothing.
    await forgetLocalState();
    mark = s3.requests.length;
    const fourth = await runLoft(['-c', config, '--upload-path', ...roots]);
    assert.equal(fourth.code, 0, fourth.stderr);
    assert.deepEqual(requestsSince(mark), { narPuts: 0, narinfoPuts: 0, narinfoGets: 0 });

    const check = await checkBucket(s3, { publicKey: key.publicKey });
    assert.deepEqual(check.violations, []);
    await deleteLocally(closure, Object.values(fixtures));
    await substitute(roots, httpCacheUrl(s3), key.publicKey);
  });
});
