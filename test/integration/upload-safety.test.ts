// What must never publish a broken cache: corrupt store paths, an upload cut off mid-multipart,
// paths served upstream. Plus the ways paths come in: stdin and --dry-run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildFixtureClosure, type FixtureCase } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';
import { startIntegrationEnv, type ConfigEdits, type IntegrationEnv } from '../helpers/integration-env.js';
import { startForwardingProxy, type TestS3 } from '../helpers/s3-server.js';
import { makeNixKey } from '../helpers/signing-keys.js';
import { bucketNarInfo, bucketObjects, closureOf, hashPartOfPath } from '../helpers/upload-env.js';
import { skipTest } from '../helpers/skip.js';

describe('never half-published', () => {
  let testEnv: IntegrationEnv | undefined;
  let dir: string;
  let s3: TestS3;
  const built: string[] = [];

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-safety-', 'loft-safety-test-1');
    ({ dir, s3 } = testEnv);
  });
  after(async () => {
    if (!hasNix()) return;
    await testEnv?.close(built);
  });

  async function fixtures(largeFileMb = 1): Promise<Record<FixtureCase, string>> {
    const f = await buildFixtureClosure({ largeFileMb });
    built.push(...Object.values(f));
    return f;
  }
  async function config(name: string, extra: ConfigEdits = {}) {
    return testEnv!.configIn(name, extra);
  }

  test('paths signed by a skip_signed_by_keys key are not uploaded; their referrers are', async (t) => {
    if (!requireNix(t)) return;
    const f = await fixtures();
    const upstream = await makeNixKey(dir, 'upstream-cache-1');
    await nixBin(['nix', 'store', 'sign', '-k', upstream.secretPath, '--', f.leaf]);
    const cfg = await config('skip', { skipSignedByKeys: ['upstream-cache-1'] });
    const run = await runLoft(['-c', cfg, '--upload-path', f.mid]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /skipped .*loft-fixture-leaf: signed by a key in skip_signed_by_keys/);
    assert.equal(await bucketNarInfo(s3, hashPartOfPath(f.leaf)), undefined);
    assert.ok(await bucketNarInfo(s3, hashPartOfPath(f.mid)));
  });

  test('a path changed after registration is refused: no narinfo, no NAR, nor for its referrers', async (t) => {
    if (!requireNix(t)) return;
    const f = await fixtures();
    const victim = join(f.tree, 'regular.txt');
    await chmod(f.tree, 0o755);
    await chmod(victim, 0o644);
    await writeFile(victim, 'tampered after registration\n');
    const cfg = await config('corrupt');
    const run = await runLoft(['-c', cfg, '--upload-path', f.tree, f.leaf]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, new RegExp(`failed ${f.tree}: .*is corrupt`));
    assert.equal(await bucketNarInfo(s3, hashPartOfPath(f.tree)), undefined);
    const objects = await bucketObjects(s3);
    assert.ok(![...objects.keys()].some((k) => k.startsWith(`nar/${hashPartOfPath(f.tree)}`)), 'NAR removed');
    assert.ok(await bucketNarInfo(s3, hashPartOfPath(f.leaf)), 'the healthy path is uploaded');
  });

  test('an upload cut off mid-multipart leaves no narinfo, and a rerun completes', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external) return skipTest(t, 'in-process-s3', 'needs the in-process server to cut the connection');
    const f = await fixtures(12);
    let cut = true;
    // The "server" dies for every part upload while `cut` holds: connections are dropped mid-body.
    const flaky = await startForwardingProxy(s3.endpoint, (req, rec) => {
      if (!cut || !rec.query.has('partNumber')) return undefined;
      req.socket.destroy();
      return { respond: { status: 500 } };
    });
    t.after(() => flaky.close());
    const cfg = await config('cut', { s3: { ...s3, endpoint: flaky.endpoint }, extraS3: 'max_attempts = 2' });
    const first = await runLoft(['-c', cfg, '--upload-path', f.large]);
    assert.equal(first.code, 1, first.stderr);
    assert.equal(await bucketNarInfo(s3, hashPartOfPath(f.large)), undefined, 'no narinfo after the cut');
    const uploadsLeft = s3.requests.filter((r) => r.method === 'DELETE' && r.query.has('uploadId'));
    assert.ok(uploadsLeft.length > 0, 'the multipart upload was aborted');
    cut = false;
    const second = await runLoft(['-c', cfg, '--upload-path', f.large]);
    assert.equal(second.code, 0, second.stderr);
    const ni = await bucketNarInfo(s3, hashPartOfPath(f.large));
    assert.ok(ni);
    assert.equal((await bucketObjects(s3)).get(ni.url), ni.fileSize);
  });

  test('--upload-path - reads paths from stdin; --dry-run uploads nothing', async (t) => {
    if (!requireNix(t)) return;
    const f = await fixtures();
    const cfg = await config('stdin');
    const closure = await closureOf([f.top]);
    const dry = await runLoft(['-c', cfg, '--dry-run', '--upload-path', '-'], { stdin: `${f.top}\n` });
    assert.equal(dry.code, 0, dry.stderr);
    for (const p of closure) assert.match(dry.stdout, new RegExp(`would upload ${p}`));
    // Each line says why: what the user asked for, or which path to be uploaded needs it.
    assert.match(
      dry.stdout,
      new RegExp(`^would upload ${f.top} \\(.*\\): not in the cache; requested$`, 'm'),
    );
    assert.match(
      dry.stdout,
      new RegExp(`^would upload ${f.mid} \\(.*\\): not in the cache; referenced by ${f.top}$`, 'm'),
    );
    assert.match(
      dry.stdout,
      new RegExp(`^would upload ${f.leaf} \\(.*\\): not in the cache; referenced by ${f.mid}$`, 'm'),
    );
    assert.equal(await bucketNarInfo(s3, hashPartOfPath(f.top)), undefined);
    const real = await runLoft(['-c', cfg, '--upload-path', '-'], { stdin: `${f.top} ${f.tree}\n` });
    assert.equal(real.code, 0, real.stderr);
    assert.ok(await bucketNarInfo(s3, hashPartOfPath(f.top)));
    assert.ok(await bucketNarInfo(s3, hashPartOfPath(f.tree)));
  });
});
