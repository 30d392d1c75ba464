// Mark, wait, sweep against the in-memory object store and a real SQLite file: the objects each
// run writes and deletes, with the server's clock moved by shifting LastModified back.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/log.js';
import { renderRoots } from '../../../src/format/loft-state.js';
import {
  runPrune as runSweepOnce,
  type PruneRunOptions as SweepRunOptions,
} from '../../../src/prune/prune-run.js';
import { memoryBucket } from '../../helpers/memory-bucket.js';
import { h, narinfoText } from './policy-fixtures.js';

const DAY = 86_400_000;
const GRACE_HOURS = 0.01; // 36 s; settle 9 s

async function setup() {
  const { store, cache, db } = await memoryBucket('sweep');
  const deps = { store, cache, db, storeDir: '/nix/store', logger: silentLogger() };
  const put = (key: string, body: string) => store.putBytes(key, body, { contentType: 'x' });
  const addPath = async (id: number, refs: number[] = []) => {
    await put(`nar/${h(id)}.nar.zst`, 'x'.repeat(500));
    await put(`${h(id)}.narinfo`, narinfoText(id, refs));
  };
  /** Moves every object (or those under `prefix`) `ms` into the past. */
  const age = (ms: number, prefix = '') => {
    for (const [k, o] of store.objects) {
      if (k.startsWith(prefix)) o.lastModified = new Date(o.lastModified.getTime() - ms);
    }
  };
  const keys = (prefix: string) => [...store.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  return { store, deps, addPath, age, keys, put };
}

const opts: SweepRunOptions = {
  dryRun: false,
  host: 'test-host',
  waitForDoom: false,
  settings: { retentionDays: 30, targetPercentage: 80, orphanGraceHours: 24, graceHours: GRACE_HOURS },
};
const GRACE_MS = GRACE_HOURS * 3_600_000;

describe('runPrune with a grace period', () => {
  test('an expired path is marked, doomed a grace period later, deleted a settle later, its NAR a grace after that', async () => {
    const { deps, addPath, age, keys } = await setup();
    await addPath(1);
    await addPath(2, [1]);
    age(40 * DAY);
    const first = await runSweepOnce(deps, opts);
    assert.equal(first.counts.marked, 2);
    assert.equal(keys('.loft/prune/mark-').length, 1);
    assert.equal(keys('').filter((k) => k.endsWith('.narinfo')).length, 2, 'a mark deletes nothing');

    const early = await runSweepOnce(deps, opts);
    assert.deepEqual([early.counts.doomed, early.counts.marked], [0, 0], 'the mark is not a grace old yet');

    age(GRACE_MS, '.loft/prune/');
    const second = await runSweepOnce(deps, opts);
    assert.equal(second.counts.doomed, 2);
    assert.deepEqual([keys('.loft/prune/mark-').length, keys('.loft/prune/doom-').length], [0, 1]);

    age(first.settleMs, '.loft/prune/');
    const third = await runSweepOnce(deps, opts);
    assert.equal(third.counts.narinfosDeleted, 2);
    assert.deepEqual(
      keys('').filter((k) => k.endsWith('.narinfo')),
      [],
    );
    assert.deepEqual(keys('nar/').length, 2, 'NARs stay a grace period after their narinfos');
    assert.equal(keys('.loft/prune/gone-').length, 1);

    age(GRACE_MS, '.loft/prune/');
    const fourth = await runSweepOnce(deps, opts);
    assert.equal(fourth.counts.keysDeleted, 2);
    assert.deepEqual(keys('nar/'), []);
    assert.deepEqual(keys('.loft/prune/'), [], 'every state object is gone once its work is done');
    assert.ok(keys('').includes('.loft/clock'));
  });

  test('a narinfo rewritten after the mark revives its path; a new referrer keeps its dependency', async () => {
    const { deps, addPath, age, keys } = await setup();
    await addPath(1);
    await addPath(3);
    age(40 * DAY);
    await runSweepOnce(deps, opts);
    await addPath(3); // re-uploaded after the mark: revived
    await addPath(4, [1]); // a new path that references path 1
    age(GRACE_MS, '.loft/prune/');
    const doomRun = await runSweepOnce(deps, opts);
    assert.equal(doomRun.counts.doomed, 0);
    age(GRACE_MS, '.loft/prune/');
    await runSweepOnce(deps, opts);
    const narinfos = keys('').filter((k) => k.endsWith('.narinfo'));
    assert.deepEqual(narinfos, [h(1), h(3), h(4)].map((x) => `${x}.narinfo`).sort());
  });

  test('paths in roots a host published within the retention period are never marked', async () => {
    const { deps, addPath, age, keys, put, store } = await setup();
    await addPath(1);
    await addPath(2, [1]);
    await addPath(3);
    age(40 * DAY);
    await put('.loft/roots/host-b.json', renderRoots({ kind: 'roots', host: 'host-b', paths: [h(2)] }));
    await put('.loft/roots/gone-host.json', renderRoots({ kind: 'roots', host: 'gone-host', paths: [h(3)] }));
    store.objects.get('.loft/roots/gone-host.json')!.lastModified = new Date(Date.now() - 31 * DAY);
    const run = await runSweepOnce(deps, opts);
    assert.deepEqual(
      run.plan?.mark,
      [h(3)],
      'path 2 is a root and path 1 its dependency; path 3 only an old root',
    );
    assert.equal(keys('.loft/prune/mark-').length, 1);
  });

  test('a dry run writes nothing, not even the clock', async () => {
    const { store, deps, addPath, age } = await setup();
    await addPath(1);
    age(40 * DAY);
    const before = [...store.objects.keys()].sort();
    const dry = await runSweepOnce(deps, { ...opts, dryRun: true });
    assert.deepEqual(dry.plan?.mark, [h(1)]);
    assert.deepEqual([...store.objects.keys()].sort(), before);
  });
});
