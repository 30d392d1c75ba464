// The prune without a grace period (prune_grace_hours = 0 on a bucket without a grace record):
// mark, wait and sweep in one pass, from bucket to bucket, over the in-memory object store and a
// real SQLite file. Time moves by moving every object's LastModified back.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/log.js';
import { PruneBusyError } from '../../../src/errors.js';
import { runPrune, type PruneRunOptions } from '../../../src/prune/prune-run.js';
import { memoryBucket } from '../../helpers/memory-bucket.js';
import { h, narinfoText } from './policy-fixtures.js';

const DAY = 86_400_000;

async function setup() {
  const { store, cache, db } = await memoryBucket('prune');
  const deps = { store, cache, db, storeDir: '/nix/store', logger: silentLogger() };
  const put = async (key: string, body: string) => store.putBytes(key, body, { contentType: 'x' });
  await put('nix-cache-info', 'StoreDir: /nix/store\n');
  await put('README.txt', 'not ours');
  const addPath = async (id: number, refs: number[] = []) => {
    await put(`nar/${h(id)}.nar.zst`, 'x'.repeat(500));
    await put(`${h(id)}.narinfo`, narinfoText(id, refs));
    cache.add(h(id));
  };
  return { store, cache, db, deps, put, addPath };
}

type Store = Awaited<ReturnType<typeof setup>>['store'];

/** Runs a prune `daysLater` days on: every object is moved that far into the past first. */
function runPruneOnce(
  deps: Parameters<typeof runPrune>[0] & { store: Store },
  o: { daysLater: number; extra: Partial<PruneRunOptions> },
) {
  for (const obj of deps.store.objects.values()) {
    obj.lastModified = new Date(obj.lastModified.getTime() - o.daysLater * DAY);
  }
  return runPrune(deps, {
    dryRun: false,
    host: 'test-host',
    settings: { retentionDays: 30, targetPercentage: 80, orphanGraceHours: 24, graceHours: 0 },
    ...o.extra,
  });
}

const opts = (daysLater: number, extra: Partial<PruneRunOptions> = {}) => ({ daysLater, extra });

describe('runPrune with grace 0', () => {
  test('deletes an expired closure: narinfos first, then NARs; keeps foreign objects and nix-cache-info', async () => {
    const { store, cache, db, deps, addPath } = await setup();
    await addPath(1);
    await addPath(2, [1, 2]);
    const result = await runPruneOnce(deps, opts(40));
    assert.equal(result.policy?.paths.length, 2);
    assert.deepEqual([...store.objects.keys()].sort(), ['.loft/clock', 'README.txt', 'nix-cache-info']);
    const deletes = store.calls.filter((c) => c.op === 'deleteMany').map((c) => c.key);
    const lastNarinfo = Math.max(...deletes.map((k, i) => (k.endsWith('.narinfo') ? i : -1)));
    const firstNar = deletes.findIndex((k) => k.startsWith('nar/'));
    assert.ok(lastNarinfo < firstNar, `order: ${deletes.join(' ')}`);
    assert.equal(cache.has(h(1)), false, 'presence cache forgot the path');
    assert.equal(db.all().size, 0, 'narinfo_meta forgot the path');
    assert.equal(result.counts.deleteRequests, 2);
  });

  test('a second prune of an unchanged bucket reads no narinfo; a rewritten one is read again', async () => {
    const { store, deps, addPath, put } = await setup();
    await addPath(1);
    await addPath(2, [1]);
    const first = await runPruneOnce(deps, opts(0, { dryRun: true }));
    assert.equal(first.counts.narinfosRead, 2);
    const gets = () => store.calls.filter((c) => c.op === 'get').length;
    const before = gets();
    const second = await runPruneOnce(deps, opts(0, { dryRun: true }));
    assert.equal(second.counts.narinfosRead, 0);
    assert.equal(gets(), before);
    await put(`${h(2)}.narinfo`, narinfoText(2, [1]) + '\nSig: k:x');
    const third = await runPruneOnce(deps, opts(0, { dryRun: true }));
    assert.equal(third.counts.narinfosRead, 1);
  });

  test('--dry-run deletes nothing but lists the plan', async () => {
    const { store, deps, addPath } = await setup();
    await addPath(1);
    const n = store.objects.size;
    const result = await runPruneOnce(deps, opts(40, { dryRun: true }));
    assert.equal(result.policy?.paths.length, 1);
    assert.equal(store.objects.size, n);
    assert.equal(store.calls.filter((c) => c.op === 'deleteMany').length, 0);
  });

  test('a malformed narinfo is kept with its NAR and what it references; the nix copy layout is followed', async () => {
    const { store, deps, put, addPath } = await setup();
    await addPath(1);
    await put(`nar/${h(2)}.nar.zst`, 'x');
    await put(`${h(2)}.narinfo`, `URL: nar/${h(2)}.nar.zst\nReferences: ${h(1)}-p1\nNarSize: oops\n`);
    // nix copy: NAR named by its FileHash, xz, with a listing.
    await put('nar/1b8m3sgpz8c27wrdfwddx2vgr1ix0szbzv0lv9a8zcr7v8cddgm0.nar.xz', 'y'.repeat(300));
    await put(
      `${h(3)}.narinfo`,
      narinfoText(3, [], 'nar/1b8m3sgpz8c27wrdfwddx2vgr1ix0szbzv0lv9a8zcr7v8cddgm0.nar.xz'),
    );
    await put(`${h(3)}.ls`, '{}');
    const result = await runPruneOnce(deps, opts(40));
    assert.equal(result.inventory?.malformed, 1);
    assert.deepEqual(
      result.policy?.paths.map((p) => p.hashPart),
      [h(3)],
    );
    assert.ok(store.objects.has(`nar/${h(2)}.nar.zst`));
    assert.ok(store.objects.has(`${h(1)}.narinfo`));
    assert.ok(!store.objects.has(`${h(3)}.ls`));
    assert.ok(!store.objects.has('nar/1b8m3sgpz8c27wrdfwddx2vgr1ix0szbzv0lv9a8zcr7v8cddgm0.nar.xz'));
  });

  test('a narinfo committed while the prune reads the bucket keeps the expired paths it references', async () => {
    const { store, deps, addPath, put } = await setup();
    await addPath(1);
    // While the first look reads narinfo 1, an upload commits path 5 that references 1.
    const get = store.get.bind(store);
    let injected = false;
    store.get = async (key: string) => {
      if (!injected) {
        injected = true;
        await put(`nar/${h(5)}.nar.zst`, 'z');
        await put(`${h(5)}.narinfo`, narinfoText(5, [1]));
      }
      return get(key);
    };
    for (const k of [`${h(1)}.narinfo`, `nar/${h(1)}.nar.zst`]) {
      store.objects.get(k)!.lastModified = new Date(Date.now() - 40 * DAY);
    }
    const result = await runPruneOnce(deps, opts(0));
    assert.ok(injected);
    assert.ok(store.objects.has(`${h(1)}.narinfo`), 'expired path 1 kept: 5 references it');
    assert.ok(store.objects.has(`nar/${h(1)}.nar.zst`));
    assert.deepEqual(result.policy?.paths, []);
    assert.deepEqual(result.policy?.keptBecauseReferenced, [h(1)]);
  });

  test('orphan NARs go after the grace period; unfinished multipart uploads are aborted', async () => {
    const { store, deps, put } = await setup();
    await put('nar/orphan.nar.zst', 'o'.repeat(10));
    const aborted: string[] = [];
    let shift = 0;
    const withUploads = Object.assign(store, {
      // eslint-disable-next-line @typescript-eslint/require-await
      async *listMultipartUploads() {
        yield { key: 'nar/partial.nar.zst', uploadId: 'u1', initiated: new Date(Date.now() - shift) };
      },
      abortMultipartUpload: (key: string, uploadId: string) => {
        aborted.push(`${key}#${uploadId}`);
        return Promise.resolve();
      },
    });
    shift = 0.5 * DAY;
    const young = await runPruneOnce({ ...deps, store: withUploads }, opts(0.5));
    assert.equal(young.policy?.orphans.length, 0);
    assert.ok(store.objects.has('nar/orphan.nar.zst'));
    shift = 2 * DAY;
    const old = await runPruneOnce({ ...deps, store: withUploads }, opts(1.5));
    assert.equal(old.policy?.orphans.length, 1);
    assert.ok(!store.objects.has('nar/orphan.nar.zst'));
    assert.deepEqual(aborted, ['nar/partial.nar.zst#u1']);
  });

  test('never two prunes at once', async () => {
    const { deps, db, addPath } = await setup();
    await addPath(1);
    assert.equal(db.tryLock({ pid: 1, host: 'other' }), undefined);
    await assert.rejects(runPruneOnce(deps, opts(40)), PruneBusyError);
    db.unlock();
    const result = await runPruneOnce(deps, opts(40));
    assert.equal(result.policy?.paths.length, 1);
  });
});
