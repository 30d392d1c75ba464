import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GIB, planPrune } from '../../../src/prune/policy.js';
import { DAY, h, inputOf, NOW, path, SETTINGS } from './policy-fixtures.js';

const deleted = (plan: ReturnType<typeof planPrune>) => plan.paths.map((p) => p.hashPart).sort();
const ids = (...n: number[]) => n.map(h).sort();

describe('retention', () => {
  test('an expired path nothing references goes; a fresh one stays', () => {
    const plan = planPrune(inputOf([path({ id: 1, ageDays: 40 }), path({ id: 2, ageDays: 5 })]));
    assert.deepEqual(deleted(plan), ids(1));
    assert.equal(plan.paths[0]!.reason, 'expired');
    assert.deepEqual(plan.narinfoKeys, [`${h(1)}.narinfo`]);
    assert.deepEqual(plan.dataKeys, [`nar/${h(1)}.nar.zst`]);
    assert.equal(plan.pathBytes, 1100);
  });

  test('an expired path a fresh path references is kept, transitively', () => {
    const plan = planPrune(
      inputOf([
        path({ id: 1, ageDays: 90 }),
        path({ id: 2, ageDays: 60, refs: [1] }),
        path({ id: 3, ageDays: 1, refs: [2, 3] }),
        path({ id: 4, ageDays: 45, refs: [1] }),
      ]),
    );
    assert.deepEqual(deleted(plan), ids(4));
    assert.deepEqual(plan.keptBecauseReferenced.sort(), ids(1, 2));
  });

  test('a whole expired closure goes together', () => {
    const plan = planPrune(inputOf([path({ id: 1, ageDays: 90 }), path({ id: 2, ageDays: 31, refs: [1] })]));
    assert.deepEqual(deleted(plan), ids(1, 2));
    assert.equal(plan.narinfoKeys.length, 2);
    assert.equal(plan.dataKeys.length, 2);
  });

  test('exactly at the retention boundary a path is not yet expired', () => {
    const plan = planPrune(inputOf([path({ id: 1, ageDays: 30 })]));
    assert.deepEqual(deleted(plan), []);
  });

  test('malformed narinfos and protected paths are never deleted, nor what they reference', () => {
    const plan = planPrune(
      inputOf(
        [
          path({ id: 1, ageDays: 90, malformed: true, refs: [2] }),
          path({ id: 2, ageDays: 90 }),
          path({ id: 3, ageDays: 90, refs: [4] }),
          path({ id: 4, ageDays: 90 }),
          path({ id: 5, ageDays: 90 }),
        ],
        { protectedHashParts: new Set([h(3)]) },
      ),
    );
    assert.deepEqual(deleted(plan), ids(5));
  });

  test('references to paths outside the bucket (served upstream) are ignored', () => {
    const plan = planPrune(inputOf([path({ id: 1, ageDays: 2, refs: [99] })]));
    assert.deepEqual(deleted(plan), []);
  });
});

describe('broken paths and shared NARs', () => {
  test('a narinfo whose NAR is gone goes, with every path that references it', () => {
    const plan = planPrune(
      inputOf([
        path({ id: 1, ageDays: 3, narMissing: true }),
        path({ id: 2, ageDays: 2, refs: [1] }),
        path({ id: 3, ageDays: 2 }),
      ]),
    );
    assert.deepEqual(deleted(plan), ids(1, 2));
    assert.ok(plan.paths.every((p) => p.reason === 'broken'));
    assert.ok(!plan.dataKeys.includes(`nar/${h(1)}.nar.zst`), 'no delete for an absent NAR');
  });

  test('a NAR missing from a path younger than the grace period is an upload in flight: kept', () => {
    const plan = planPrune(inputOf([path({ id: 1, ageDays: 0.5, narMissing: true })]));
    assert.deepEqual(deleted(plan), []);
  });

  test('a NAR two narinfos name is deleted only with the last of them', () => {
    const one = planPrune(inputOf([path({ id: 1, ageDays: 40 }), path({ id: 2, ageDays: 3, narOf: 1 })]));
    assert.deepEqual(deleted(one), ids(1));
    assert.deepEqual(one.dataKeys, []);
    const both = planPrune(inputOf([path({ id: 1, ageDays: 40 }), path({ id: 2, ageDays: 33, narOf: 1 })]));
    assert.deepEqual(both.dataKeys, [`nar/${h(1)}.nar.zst`]);
  });
});

describe('orphans and multipart uploads', () => {
  test('removed only after the grace period', () => {
    const plan = planPrune(
      inputOf([], {
        orphanCandidates: [
          { key: 'nar/old.nar.zst', size: 10, lastModified: NOW - 2 * DAY },
          { key: 'nar/new.nar.zst', size: 10, lastModified: NOW - 3_600_000 },
        ],
        pendingUploads: [
          { key: 'nar/a.nar.zst', uploadId: 'u1', initiated: NOW - 25 * 3_600_000 },
          { key: 'nar/b.nar.zst', uploadId: 'u2', initiated: NOW - 60_000 },
        ],
      }),
    );
    assert.deepEqual(plan.dataKeys, ['nar/old.nar.zst']);
    assert.equal(plan.orphanBytes, 10);
    assert.deepEqual(
      plan.abortUploads.map((u) => u.uploadId),
      ['u1'],
    );
  });
});

describe('size cap', () => {
  const big = (id: number, ageDays: number, refs: number[] = []) =>
    path({ id, ageDays, refs, narBytes: 0.25 * GIB });

  test('evicts root closures oldest first until at or below the target', () => {
    // 4 closures of 0.25 GiB + narinfos; cap 1 GiB at 80 % -> two must go.
    const paths = [big(1, 10), big(2, 9, [1]), big(3, 8), big(4, 7), big(5, 6)];
    const plan = planPrune(inputOf(paths, { settings: { ...SETTINGS, maxSizeGb: 1 } }));
    assert.deepEqual(deleted(plan), ids(1, 2));
    assert.ok(plan.paths.every((p) => p.reason === 'size'));
    assert.ok(plan.sizeAfter <= plan.sizeTarget!);
    assert.equal(plan.targetMet, true);
  });

  test('a dependency another root still uses stays', () => {
    const paths = [big(1, 10), big(2, 9, [1]), big(3, 2, [1]), big(4, 1)];
    const plan = planPrune(inputOf(paths, { settings: { ...SETTINGS, maxSizeGb: 1 } }));
    assert.ok(!deleted(plan).includes(h(1)));
    assert.ok(deleted(plan).includes(h(2)));
  });

  test('nothing happens while under the cap; young paths are never evicted', () => {
    const under = planPrune(inputOf([big(1, 10)], { settings: { ...SETTINGS, maxSizeGb: 1 } }));
    assert.deepEqual(deleted(under), []);
    assert.equal(under.sizeTarget, undefined);
    const young = planPrune(
      inputOf([big(1, 0.1), big(2, 0.2), big(3, 0.3), big(4, 0.4), big(5, 0.5)], {
        settings: { ...SETTINGS, maxSizeGb: 1 },
      }),
    );
    assert.deepEqual(deleted(young), []);
    assert.equal(young.targetMet, false);
  });
});

test('only what the plan lists is deleted: nix-cache-info and foreign objects are not paths', () => {
  const plan = planPrune(inputOf([path({ id: 1, ageDays: 99 })]));
  for (const k of [...plan.narinfoKeys, ...plan.dataKeys]) {
    assert.ok(k.endsWith('.narinfo') || k.startsWith('nar/'), k);
  }
});
