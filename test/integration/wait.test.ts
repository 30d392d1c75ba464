// `loft --wait` at the end of a CI job: a real daemon (the built CLI) uploading to s3rver from a
// PRIVATE Nix store (as daemon.test.ts, so other test files' builds stay out), `--enqueue` as the
// post-build hook, and the queue's real SQLite file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UploadQueue } from '../../src/state/queue.js';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { startIntegrationEnv, usePrivateNixStore, type IntegrationEnv } from '../helpers/integration-env.js';
import { randomSalt } from '../helpers/fixtures.js';
import { runLoft, spawnLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import type { TestS3 } from '../helpers/s3-server.js';
import { bucketObjects, hashPartOfPath } from '../helpers/upload-env.js';

const nixStore = usePrivateNixStore('loft-wait-nix-');

/** A path nothing else references, built before the daemon looks (only --enqueue brings it). */
async function buildLoose(): Promise<string> {
  const expr = `derivation { name = "loft-wait"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; salt = "${randomSalt()}"; args = [ "-c" "echo wait > $out" ]; }`;
  return (await nixBin(['nix-build', '--no-out-link', '-E', expr])).stdout.trim();
}

async function startDaemon(config: string): Promise<{ child: ChildProcess; exited: Promise<number | null> }> {
  const child = spawnLoft(['-c', config], { env: nixEnv() });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const end = Date.now() + 20_000;
  while (!stderr.includes('daemon started, watching the store')) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`daemon did not start:\n${stderr}`);
    await sleep(50);
  }
  return { child, exited };
}

after(() => nixStore.remove());

void describe('loft --wait', { concurrency: false }, () => {
  let testEnv: IntegrationEnv | undefined;
  let dir: string;
  let s3: TestS3;
  let config: string;

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-wait-', 'loft-test-1');
    ({ dir, s3 } = testEnv);
    config = await testEnv.config({ extraLoft: 'scan_on_startup = false' });
  });
  after(async () => {
    await testEnv?.close();
  });

  test('returns 0 once the daemon has committed what was enqueued before it', async (t) => {
    if (!requireNix(t)) return;
    const empty = await runLoft(['-c', config, '--wait']);
    assert.equal(empty.code, 0, empty.stderr);
    const paths = [await buildLoose(), await buildLoose()];
    const daemon = await startDaemon(config);
    try {
      const hook = await runLoft(['-c', config, '--enqueue', ...paths]);
      assert.match(hook.stdout, /queued 2 paths/);
      const wait = await runLoft(['-c', config, '--wait', '--timeout', '60']);
      assert.equal(wait.code, 0, wait.stderr);
      assert.match(wait.stdout, /waiting for 2 queued paths/);
      const objects = await bucketObjects(s3);
      for (const p of paths)
        assert.ok(objects.has(`${hashPartOfPath(p)}.narinfo`), `${p} committed when --wait returned`);
    } finally {
      daemon.child.kill('SIGTERM');
      assert.equal(await daemon.exited, 0);
    }
    assert.deepEqual((await checkBucket(s3, { storeDir: process.env.NIX_STORE_DIR! })).violations, []);
  });

  test('without a daemon it gives up after --timeout with exit 124', async (t) => {
    if (!requireNix(t)) return;
    const path = await buildLoose();
    assert.equal((await runLoft(['-c', config, '--enqueue', path])).code, 0);
    const started = Date.now();
    const wait = await runLoft(['-c', config, '--wait', '--timeout', '1.5']);
    const took = Date.now() - started;
    assert.equal(wait.code, 124, wait.stderr);
    assert.match(
      wait.stderr,
      /^loft: timed out after 1\.5 s: 1 paths queued before the wait are still waiting/m,
    );
    assert.ok(took >= 1500 && took < 10_000, `took ${took} ms`);
  });

  test('a parked path makes it exit 1; bad --timeout values are usage errors', async (t) => {
    if (!requireNix(t)) return;
    // What the daemon does after repeated failures, through the queue's own API on the same file.
    const queue = UploadQueue.open(join(dir, 'cache.db'), {
      policy: { baseMs: 1, maxMs: 1, maxAttempts: 1 },
    });
    try {
      for (const { path } of queue.takeDue(100)) queue.markFailed(path, 'E_TEST: refused');
    } finally {
      queue.close();
    }
    const wait = await runLoft(['-c', config, '--wait', '--timeout', '5']);
    assert.equal(wait.code, 1, wait.stderr);
    assert.match(
      wait.stderr,
      /^loft: 1 queued paths were parked after repeated failures \(see loft --status\)$/m,
    );
    for (const bad of [
      ['--wait', '--timeout', 'soon'],
      ['--wait', '--timeout', '-1'],
      ['--timeout', '5'],
    ]) {
      const run = await runLoft(['-c', config, ...bad]);
      assert.equal(run.code, 2, `${bad.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /^loft: .*--timeout/);
    }
  });
});
