// A NAR larger than one zstd frame goes up as several independent frames, largest NAR first, and
// Nix 2.8 substitutes it from the bucket with our signature required. The closure has a small path
// under the large one and a small path over it, so the narinfo order (references first) and the
// NAR order (largest first) disagree.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { ZSTD_FRAME_BYTES } from '../../src/upload/zstd-frames.js';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { deleteStorePaths, randomSalt } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';
import { startS3Server, storeOptionsFor, type TestS3 } from '../helpers/s3-server.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import {
  bucketNarInfo,
  closureOf,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
  verifyClosure,
  writeConfig,
} from '../helpers/upload-env.js';
import { skipTest } from '../helpers/skip.js';

/** small <- large (40 MiB: text, random, text) <- user. References come from the paths in a file. */
function closureExpr(salt: string): string {
  const mk = (name: string, deps: string, script: string) => `derivation {
    name = "${name}"; salt = "${salt}"; deps = [ ${deps} ]; system = builtins.currentSystem;
    builder = "/bin/sh"; PATH = "/usr/bin:/bin";
    args = [ "-c" ''set -e; mkdir -p $out; for d in $deps; do echo "$d"; done > $out/refs; ${script}'' ];
  }`;
  return `let
    small = ${mk('frames-small', '', 'echo small $salt > $out/s')};
    large = ${mk(
      'frames-large',
      'small',
      'seq 1 2500000 > $out/a.txt; head -c 12582912 /dev/urandom > $out/b.bin; seq 7 3000000 > $out/c.txt',
    )};
    user = ${mk('frames-user', 'large', 'echo user > $out/u')};
  in { inherit small large user; }`;
}

async function build(dir: string, salt: string): Promise<Record<'small' | 'large' | 'user', string>> {
  const file = join(dir, 'frames.nix');
  await writeFile(file, closureExpr(salt));
  const out = {} as Record<'small' | 'large' | 'user', string>;
  for (const attr of ['small', 'large', 'user'] as const) {
    out[attr] = (await nixBin(['nix-build', '--no-out-link', file, '-A', attr])).stdout.trim();
  }
  return out;
}

/** `zstd -lv` prints "# Zstandard Frames: N" for a file. */
function zstdFrames(file: string): number {
  const r = spawnSync('zstd', ['-lv', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const m = /# Zstandard Frames: (\d+)/.exec(r.stdout);
  assert.ok(m, r.stdout);
  return Number(m[1]);
}

describe('multi-frame zstd NARs, largest first, substituted by Nix', () => {
  let dir: string;
  let s3: TestS3;
  let key: KeyFiles;
  let paths: Record<'small' | 'large' | 'user', string>;

  before(async () => {
    if (!hasNix()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-frames-'));
    s3 = await startS3Server();
    key = await makeNixKey(dir, 'loft-test-1');
    paths = await build(dir, randomSalt());
  });
  after(async () => {
    if (!hasNix()) return;
    await s3?.close();
    await deleteStorePaths(Object.values(paths ?? {}));
    await rm(dir, { recursive: true, force: true });
  });

  test('the large NAR is several frames, zstd -t accepts it, and it went up first', async (t) => {
    if (!requireNix(t)) return;
    if (spawnSync('zstd', ['--version']).status !== 0) {
      return skipTest(t, 'zstd', 'the zstd CLI checks the frames independently; it is not installed');
    }
    const config = await writeConfig({ dir, s3, signingKeyPath: key.secretPath });
    // One upload at a time, so the order of the requests is the order the pool started the NARs.
    await writeFile(
      config,
      (await readFile(config, 'utf8')).replace('upload_threads = 4', 'upload_threads = 1'),
    );
    const run = await runLoft(['-c', config, '--upload-path', paths.user], {
      env: { LOFT_COMPUTE_THREADS: '2' },
    });
    assert.equal(run.code, 0, run.stderr);

    const ni = await bucketNarInfo(s3, hashPartOfPath(paths.large));
    assert.ok(ni);
    assert.ok(ni.narSize > 2 * ZSTD_FRAME_BYTES, `the fixture spans 3 frames (${ni.narSize} bytes)`);
    const store = new S3ObjectStore(storeOptionsFor(s3));
    const body = await store.get(ni.url);
    await store.close();
    assert.ok(body);
    const file = join(dir, 'large.nar.zst');
    await writeFile(file, body);
    assert.equal(zstdFrames(file), Math.ceil(ni.narSize / ZSTD_FRAME_BYTES));
    const check = spawnSync('zstd', ['-t', file], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);

    if (s3.external)
      return skipTest(t, 'in-process-s3', 'the request order is recorded only by the in-process s3rver');
    const narWrites = s3.requests.filter((r) => r.method !== 'GET' && r.key.startsWith('nar/'));
    assert.ok(narWrites[0]!.key.startsWith(`nar/${hashPartOfPath(paths.large)}-`), 'largest NAR first');
    const narinfos = s3.requests
      .filter((r) => r.method === 'PUT' && r.key.endsWith('.narinfo'))
      .map((r) => r.key);
    const order = [paths.small, paths.large, paths.user].map((p) => `${hashPartOfPath(p)}.narinfo`);
    assert.deepEqual(narinfos, order, 'narinfos references first');
    // A small NAR is one PUT whose signed payload hash is the FileHash loft computed anyway.
    const small = await bucketNarInfo(s3, hashPartOfPath(paths.small));
    const smallPut = s3.requests.find((r) => r.method === 'PUT' && r.key === small?.url);
    assert.equal(smallPut?.headers['x-amz-content-sha256'], small?.fileHash?.digest.toString('hex'));
    const bucket = await checkBucket(s3, { publicKey: key.publicKey });
    assert.deepEqual(bucket.violations, []);
    assert.equal(bucket.narsVerified, 3);
  });

  test('Nix 2.8 substitutes the multi-frame NAR with our signature required', async (t) => {
    if (!requireNix(t)) return;
    const closure = await closureOf([paths.user]);
    await deleteLocally(closure);
    await substitute([paths.user], httpCacheUrl(s3), key.publicKey);
    await verifyClosure([paths.user], key.publicKey);
  });
});
