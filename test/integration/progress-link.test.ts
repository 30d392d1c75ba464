// The progress line on a slow link tells the truth: the built CLI uploads a closure to s3rver
// through a proxy that behaves like a 20 Mbit/s link with a 40 ms round trip
// (test/helpers/link-proxy.ts), on a pseudo-terminal, and every redraw is held against the clock
// and the bucket. The line must never be more than 20 points ahead of the share of the run's time
// that has passed (counting NAR bytes read put it up to 48 points ahead, since the reader runs
// ahead of the network by every part the store buffers), must show 100 % only on its last redraw,
// right before the summary, and its path counter must never exceed the narinfos stored. Needs the
// in-process s3rver: the proxy forwards to it by address, and the bucket is counted on its disk.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomSalt } from '../helpers/fixtures.js';
import { startLinkProxy, type LinkProxy } from '../helpers/link-proxy.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';
import {
  bucketDirOf,
  describeLead,
  narinfosIn,
  pointsAhead,
  storedBy,
  watchProgress,
} from '../helpers/progress-watch.js';
import { startS3Server, type TestS3 } from '../helpers/s3-server.js';
import { makeNixKey } from '../helpers/signing-keys.js';
import { closureOf, writeConfig } from '../helpers/upload-env.js';

const PROGRESS_NIX = fileURLToPath(new URL('../fixtures/progress-closure.nix', import.meta.url));
const external = Boolean(process.env.LOFT_TEST_S3_ENDPOINT);
const skip = external ? 'needs the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)' : false;
/** The bar of issue 27: points the line may run ahead of the time passed. */
const MAX_AHEAD = 20;

describe('progress through a 20 Mbit/s link', { skip }, () => {
  let dir: string;
  let s3: TestS3;
  let link: LinkProxy;
  let drv = '';
  let closure: string[] = [];
  let root = '';

  before(async () => {
    if (!hasNix()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-progress-link-'));
    s3 = await startS3Server();
    link = await startLinkProxy({ target: s3.endpoint, rttMs: 40, mbitPerSecond: 20 });
    const args = ['--argstr', 'salt', randomSalt()];
    drv = (await nixBin(['nix-instantiate', PROGRESS_NIX, ...args])).stdout.trim();
    const { stdout } = await nixBin(['nix-store', '--realise', '--', drv]);
    root = stdout.split('\n').find((l) => /-loft-progress$/.test(l)) ?? '';
    closure = await closureOf([root]);
  });
  after(async () => {
    const left = [...closure].reverse().filter((p) => existsSync(p));
    if (left.length > 0) await nixBin(['nix-store', '--delete', '--', ...left]).catch(() => undefined);
    if (drv) await nixBin(['nix-store', '--delete', '--', drv]).catch(() => undefined);
    await link?.close();
    await s3?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('never ahead of the time passed or of the narinfos stored; 100 % only with the summary', async (t) => {
    if (!requireNix(t)) return;
    assert.ok(root, 'the fixture closure was built');
    const key = await makeNixKey(dir, 'loft-progress-link');
    const config = await writeConfig({
      dir,
      s3: { ...s3, endpoint: link.endpoint },
      signingKeyPath: key.secretPath,
    });
    const bucketDir = bucketDirOf(s3.dir!, s3.bucket);
    const run = await watchProgress(['-c', config, '--upload-path', root], () => narinfosIn(bucketDir));
    assert.equal(run.code, 0, run.raw);
    assert.ok(run.summaryAt !== undefined, `a summary was printed:\n${run.raw}`);
    const n = closure.length;
    assert.equal(narinfosIn(bucketDir), n, 'every path is stored');
    // The link was the bottleneck: otherwise time and bytes need not go together.
    const floorMs = ((link.bytes().up * 8) / 20e6) * 1000;
    assert.ok(
      floorMs > 0.6 * run.summaryAt,
      `the link carried most of the run (${floorMs} of ${run.summaryAt} ms)`,
    );
    assert.ok(run.samples.length >= 20, `the line was redrawn through the run (${run.samples.length})`);

    t.diagnostic(describeLead(run));
    const { ahead } = pointsAhead(run);
    assert.ok(
      ahead.points <= MAX_AHEAD,
      `"${ahead.sample?.text}" at ${ahead.sample?.at} of ${run.summaryAt} ms: ${ahead.points.toFixed(1)} points ahead`,
    );
    for (const s of run.samples) {
      const stored = storedBy(run, s.at);
      assert.ok(s.committed <= stored, `"${s.text}" at ${s.at} ms: only ${stored} narinfos were stored`);
    }
    const last = run.samples[run.samples.length - 1]!;
    assert.match(last.text, new RegExp(`^\\[${n}/${n}\\] 100% `));
    for (const s of run.samples.slice(0, -1))
      assert.ok(s.percent < 100, `"${s.text}" at ${s.at} ms is not the end`);
    const shownLast = run.segments[run.segments.length - 1]?.text ?? '';
    assert.match(shownLast, new RegExp(`^uploaded ${n} paths `), 'the summary is the last line');
    assert.ok(
      run.summaryAt - last.at < 1000,
      `100 % came with the summary (${last.at} and ${run.summaryAt} ms)`,
    );
  });
});
