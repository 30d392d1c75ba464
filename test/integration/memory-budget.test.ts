// The memory budget (loft.memory_budget) with the real CLI, s3rver and Nix: an upload under the
// smallest budget still stores every byte right (several NARs larger than the budget's share for
// bodies, multipart with reused part buffers), and `--status` then reports the budget, what is in
// use and the peak, which never passes the budget.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { deleteStorePaths, randomSalt } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';
import { startS3Server, type TestS3 } from '../helpers/s3-server.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import {
  closureOf,
  deleteLocally,
  httpCacheUrl,
  substitute,
  verifyClosure,
  writeConfig,
} from '../helpers/upload-env.js';

const MiB = 1024 * 1024;

/** Three NARs of 20-24 MiB of random data (each over one zstd frame and several 5 MiB parts) under one root. */
function closureExpr(salt: string): string {
  const mk = (name: string, deps: string, script: string) => `derivation {
    name = "${name}"; salt = "${salt}"; deps = [ ${deps} ]; system = builtins.currentSystem;
    builder = "/bin/sh"; PATH = "/usr/bin:/bin";
    args = [ "-c" ''set -e; mkdir -p $out; for d in $deps; do echo "$d"; done > $out/refs; ${script}'' ];
  }`;
  const big = (i: number) =>
    mk(`budget-big-${i}`, '', `head -c ${(20 + 2 * i) * MiB} /dev/urandom > $out/r.bin`);
  return `let b0 = ${big(0)}; b1 = ${big(1)}; b2 = ${big(2)};
    in ${mk('budget-root', 'b0 b1 b2', 'echo root > $out/r')}`;
}

describe('memory budget: a small budget still uploads every byte, and --status reports it', () => {
  let dir: string;
  let s3: TestS3;
  let key: KeyFiles;
  let root: string;
  let config: string;

  before(async () => {
    if (!hasNix()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-budget-'));
    s3 = await startS3Server();
    key = await makeNixKey(dir, 'loft-test-1');
    const file = join(dir, 'budget.nix');
    await writeFile(file, closureExpr(randomSalt()));
    root = (await nixBin(['nix-build', '--no-out-link', file])).stdout.trim();
    // 5 MiB parts (writeConfig's) and the smallest budget: one 16 MiB frame, four parts and no more.
    config = await writeConfig({
      dir,
      s3,
      signingKeyPath: key.secretPath,
      extraLoft: 'memory_budget = "48MiB"',
    });
  });
  after(async () => {
    if (!hasNix()) return;
    await s3?.close();
    if (root) await deleteStorePaths(await closureOf([root]).catch(() => [root]));
    await rm(dir, { recursive: true, force: true });
  });

  test('before any upload, --status shows the budget alone', async (t) => {
    if (!requireNix(t)) return;
    const run = await runLoft(['-c', config, '--status']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /^memory budget: 48\.0 MiB \(loft\.memory_budget\); no upload has reported its use yet$/m,
    );
  });

  test('the closure under a 48 MiB budget: stored right, and Nix substitutes it', async (t) => {
    if (!requireNix(t)) return;
    const run = await runLoft(['-c', config, '--upload-path', root]);
    assert.equal(run.code, 0, run.stderr);
    const bucket = await checkBucket(s3, { publicKey: key.publicKey });
    assert.deepEqual(bucket.violations, []);
    assert.equal(bucket.narsVerified, 4, 'every NAR decompresses to its NarHash');
    const closure = await closureOf([root]);
    await deleteLocally(closure);
    await substitute([root], httpCacheUrl(s3), key.publicKey);
    await verifyClosure([root], key.publicKey);
  });

  test('--status then reports in use and a peak within the budget', async (t) => {
    if (!requireNix(t)) return;
    const run = await runLoft(['-c', config, '--status']);
    assert.equal(run.code, 0, run.stderr);
    const m =
      /^memory budget: 48\.0 MiB \(loft\.memory_budget\); in use ([\d.]+) MiB, peak ([\d.]+) MiB \(pid \d+ at [\dT:.Z-]+\)$/m.exec(
        run.stdout,
      );
    assert.ok(m, run.stdout);
    const peak = Number(m[2]);
    // Frames and the reader's pools are set aside, then a body's four 5 MiB parts.
    assert.ok(peak >= 4 + 20 && peak <= 48, `peak ${peak} MiB`);
    assert.ok(Number(m[1]) <= peak);
  });

  test('to a directory, with the default budget, the reader keeps all that the frames leave', async (t) => {
    if (!requireNix(t)) return;
    await mkdir(join(dir, 'to-dir'));
    const local = await writeConfig({
      dir: join(dir, 'to-dir'),
      localPath: join(dir, 'to-dir', 'cache'),
      signingKeyPath: key.secretPath,
    });
    const up = await runLoft(['-c', local, '--upload-path', root]);
    assert.equal(up.code, 0, up.stderr);
    const run = await runLoft(['-c', local, '--status']);
    assert.equal(run.code, 0, run.stderr);
    const m = /^memory budget: ([\d.]+) MiB \(loft\.memory_budget\); in use ([\d.]+) MiB/m.exec(run.stdout);
    assert.ok(m, run.stdout);
    // A directory holds no body in the budget (cli/upload-deps.ts, readerShare): beside the frames
    // (4 MiB each) the reader's pools keep their 16 reads and slabs and 4 output slabs, 38 MiB. With
    // an eighth of the budget, as beside S3 bodies, they would keep 12 MiB or less.
    const inUse = Number(m[2]);
    assert.ok(inUse >= 38 + 4 && inUse <= Number(m[1]), `in use ${inUse} MiB of ${m[1]}`);
  });
});
