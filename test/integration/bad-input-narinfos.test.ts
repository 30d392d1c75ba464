// Broken narinfos already in the bucket (written by another tool, a crash of one, or by hand) next
// to good ones: `--populate-cache`, `--prune --dry-run` and `--prune` must each warn naming every
// broken key, finish with exit 0, count no broken narinfo as a path the cache holds, and delete
// nothing a good path needs. Real Nix substitutes the good closure afterwards, signature required.
//
// The bucket: an old closure (top -> mid -> leaf, aged 40 days) and a fresh one, both uploaded by
// loft; old.mid's own narinfo replaced by one with a broken NarHash; and planted at unused keys:
// binary garbage, an empty object, a narinfo without StorePath, and a copy of fresh.top's narinfo
// under another path's key. What pruning may do: delete old.top (expired, and nothing that stays
// references it). Everything else stays: old.mid is unreadable, so it is kept with all it may name
// (its NAR, old.leaf); and the garbage names no NAR, so no NAR counts as an orphan.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { parseNarInfo } from '../../src/format/narinfo.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { bucketSnapshot } from '../helpers/bad-input-table.js';
import { buildFixtureClosure, type FixtureCase } from '../helpers/fixtures.js';
import { logLines, runLoft, type LoftRun } from '../helpers/loft-cli.js';
import { hasNix, requireNix } from '../helpers/nix-env.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import { storeOptionsFor, type TestS3 } from '../helpers/s3-server.js';
import type { KeyFiles } from '../helpers/signing-keys.js';
import {
  closureOf,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
  verifyClosure,
} from '../helpers/upload-env.js';
import { skipTest } from '../helpers/skip.js';

const DAY = 86_400_000;
type Fixtures = Record<FixtureCase, string>;
/** Unused keys (valid nix base-32 hash parts) for the planted objects. */
const PLANTED = {
  garbage: '0'.repeat(31) + '1',
  empty: '0'.repeat(31) + '2',
  noStorePath: '0'.repeat(31) + '3',
  wrongKey: '0'.repeat(31) + '4',
};

describe('malformed narinfos in the bucket: skipped with a warning, nothing good deleted', () => {
  let testEnv: IntegrationEnv | undefined;
  let s3: TestS3;
  let key: KeyFiles;
  let config: string;
  let store: S3ObjectStore;
  let old: Fixtures;
  let fresh: Fixtures;
  /** Every narinfo key that is broken, with why. */
  let broken: string[];

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-bad-narinfos-', 'loft-bad-narinfos-1');
    ({ s3, key } = testEnv);
    store = new S3ObjectStore(storeOptionsFor(s3));
    config = await testEnv.config({ extraLoft: 'prune_enabled = true\nprune_grace_hours = 0' });
    [old, fresh] = await Promise.all([
      buildFixtureClosure({ largeFileMb: 0 }),
      buildFixtureClosure({ largeFileMb: 0 }),
    ]);
    const up = await runLoft(['-c', config, '--upload-path', old.top, fresh.top]);
    assert.equal(up.code, 0, up.stderr);
    await plant();
  });
  after(async () => {
    if (!hasNix()) return;
    await store?.close();
    await testEnv?.close([...Object.values(old ?? {}), ...Object.values(fresh ?? {})]);
  });

  const narinfoKey = (p: string) => `${hashPartOfPath(p)}.narinfo`;
  const text = async (k: string) => (await store.get(k))!.toString('utf8');
  const put = (k: string, body: string | Buffer) =>
    store.putBytes(k, body, { contentType: 'text/x-nix-narinfo' });

  async function plant(): Promise<void> {
    const mid = await text(narinfoKey(old.mid));
    await put(narinfoKey(old.mid), mid.replace(/^NarHash: .*$/m, 'NarHash: sha256:not-a-hash'));
    await put(`${PLANTED.garbage}.narinfo`, Buffer.from([0xff, 0xfe, 0x00, 0x1b, 0x5b, 0x41, 0x0a, 0x80]));
    await put(`${PLANTED.empty}.narinfo`, '');
    const leaf = await text(narinfoKey(fresh.leaf));
    await put(`${PLANTED.noStorePath}.narinfo`, leaf.replace(/^StorePath: .*\n/m, ''));
    await put(`${PLANTED.wrongKey}.narinfo`, await text(narinfoKey(fresh.top)));
    await put('nar/orphan-old.nar.zst', 'o');
    broken = [narinfoKey(old.mid), ...Object.values(PLANTED).map((h) => `${h}.narinfo`)].sort();
    // Everything but the fresh closure is 40 days old: anything not protected would be pruned.
    const freshKeys = new Set((await closureOf([fresh.top])).map(narinfoKey));
    const when = new Date(Date.now() - 40 * DAY);
    for (const k of (await bucketSnapshot(s3)).keys()) {
      if (freshKeys.has(k) || k === 'nix-cache-info') continue;
      const parts = k.split('/');
      const file = join(s3.dir!, s3.bucket, ...parts.slice(0, -1), `${parts.at(-1)}._S3rver_object`);
      await utimes(file, when, when);
    }
    // The fresh closure's NARs stay young as well.
    for (const p of await closureOf([fresh.top])) {
      assert.ok(!freshKeys.has(parseNarInfo(await text(narinfoKey(p))).url));
    }
  }

  /** The keys of the malformed-narinfo warnings, sorted; the run must be clean otherwise. */
  function warnedKeys(run: LoftRun): string[] {
    const text = `${run.stdout}\n${run.stderr}`;
    assert.equal(run.code, 0, text);
    assert.ok(!/\n\s+at .+:\d+:\d+/.test(text) && !/internal error/.test(text), text);
    return logLines(run.stderr)
      .filter((l) => l.level === 40 && /^malformed narinfo: /.test(String(l.msg)) && l.key !== undefined)
      .map((l) => String(l.key))
      .sort();
  }

  test('--populate-cache warns about each broken narinfo and counts only the good ones', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'reads the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)');
    const before = await bucketSnapshot(s3);
    const run = await runLoft(['-c', config, '--populate-cache']);
    assert.deepEqual(warnedKeys(run), broken);
    // Good: fresh top, mid, leaf; old top, leaf. Broken: old.mid and the four planted ones.
    assert.match(
      run.stdout,
      /populated the local cache from .*: 5 paths in the bucket .*; 5 malformed narinfos left out/,
    );
    const status = await runLoft(['-c', config, '--status']);
    assert.match(status.stdout, /presence cache: 5 paths known/);
    assert.deepEqual(await bucketSnapshot(s3), before);
  });

  test('--prune --dry-run warns about each broken narinfo, plans only old.top, changes nothing', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'reads the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)');
    const before = await bucketSnapshot(s3);
    const run = await runLoft(['-c', config, '--prune', '--dry-run']);
    assert.deepEqual(warnedKeys(run), broken);
    const planned = run.stdout.split('\n').filter((l) => l.startsWith('would delete '));
    const { url: topNar, deriver } = parseNarInfo(await text(narinfoKey(old.top)));
    // The path's build log goes with it (docs/cache-contents.md).
    const topLog = `log/${deriver!}`;
    assert.ok(before.has(topLog), 'the upload wrote the build log of old.top');
    assert.deepEqual(
      planned.map((l) => l.split(' ')[2]).sort(),
      [narinfoKey(old.top), topNar, topLog].sort(),
    );
    assert.match(run.stdout, /5 malformed narinfos were kept/);
    assert.deepEqual(await bucketSnapshot(s3), before);
  });

  test('--prune deletes only old.top; the good closure substitutes with our signature', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'reads the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)');
    const before = await bucketSnapshot(s3);
    const { url: topNar, deriver } = parseNarInfo(await text(narinfoKey(old.top)));
    const run = await runLoft(['-c', config, '--prune']);
    assert.deepEqual(warnedKeys(run), broken);
    const afterPrune = await bucketSnapshot(s3);
    const gone = [...before.keys()].filter((k) => !afterPrune.has(k)).sort();
    assert.deepEqual(gone, [narinfoKey(old.top), topNar, `log/${deriver!}`].sort());
    // A prune writes nothing but `.loft/clock`, where it reads the server's time.
    const added = [...afterPrune.keys()].filter((k) => !before.has(k));
    assert.deepEqual(added, ['.loft/clock'], 'nothing added but the clock');
    for (const k of broken) assert.ok(afterPrune.has(k), `${k} kept`);
    const midNar = /^URL: (.*)$/m.exec(await text(narinfoKey(old.mid)))?.[1];
    assert.ok(midNar && afterPrune.has(midNar), 'the unreadable narinfo keeps its NAR');
    assert.ok(afterPrune.has(narinfoKey(old.leaf)), 'and what it references');
    assert.ok(
      afterPrune.has('nar/orphan-old.nar.zst'),
      'no NAR counts as an orphan when a narinfo names none',
    );

    const closure = await closureOf([fresh.top]);
    await deleteLocally(closure, Object.values(fresh));
    await substitute([fresh.top], httpCacheUrl(s3), key.publicKey);
    await verifyClosure([fresh.top], key.publicKey);
  });
});
