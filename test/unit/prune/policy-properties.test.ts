// Properties of the pure prune policy over random reference graphs, ages, sizes and settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GIB, planPrune, type PruneInput, type PrunePath } from '../../../src/prune/policy.js';
import { DAY, h, inputOf, NOW, path, SETTINGS } from './policy-fixtures.js';

const GRACE_MS = SETTINGS.orphanGraceHours * 3_600_000;

/** A bucket: paths reference only earlier ones (Nix closures are DAGs), plus orphans. */
const bucket = fc
  .array(
    fc.record({
      ageDays: fc.integer({ min: 0, max: 120 * 24 }).map((hours) => hours / 24),
      refPicks: fc.array(fc.nat(), { maxLength: 4 }),
      narBytes: fc.integer({ min: 0, max: 5000 }),
      narMissing: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
      malformed: fc.integer({ min: 0, max: 30 }).map((n) => n === 0),
      shareNar: fc.integer({ min: 0, max: 10 }).map((n) => n === 0),
      outside: fc.boolean(),
    }),
    { maxLength: 40 },
  )
  .chain((specs) =>
    fc.record({
      paths: fc.constant(
        specs.map((s, i) =>
          path({
            id: i,
            ageDays: s.ageDays,
            narBytes: s.narBytes,
            narMissing: s.narMissing,
            malformed: s.malformed,
            ...(s.shareNar && i > 0 ? { narOf: i - 1 } : {}),
            refs: [
              ...(i > 0 ? s.refPicks.map((r) => r % i) : []),
              ...(s.outside ? [1000 + i] : []),
              ...(i % 7 === 0 ? [i] : []),
            ],
          }),
        ),
      ),
      orphans: fc.array(
        fc.record({ size: fc.nat(1000), ageHours: fc.double({ min: 0, max: 100, noNaN: true }) }),
        { maxLength: 5 },
      ),
      retentionDays: fc.integer({ min: 1, max: 90 }),
      /** The cap as a percentage of the bucket's size before pruning. */
      capPercent: fc.option(fc.integer({ min: 1, max: 150 }), { nil: undefined }),
      targetPercentage: fc.integer({ min: 1, max: 99 }),
      protectedIds: fc.array(fc.nat(40), { maxLength: 3 }),
    }),
  )
  .map((b): PruneInput => {
    const orphanCandidates = b.orphans.map((o, i) => ({
      key: `nar/orphan-${i}.nar.zst`,
      size: o.size,
      lastModified: NOW - o.ageHours * 3_600_000,
    }));
    // One object per key: a path sharing another's NAR sees that object's size (or its absence).
    const narSize = new Map<string, number | undefined>();
    for (const p of b.paths) {
      if (p.narKey === undefined) continue;
      if (!narSize.has(p.narKey)) narSize.set(p.narKey, p.narObjectSize);
      const size = narSize.get(p.narKey);
      if (size === undefined) delete p.narObjectSize;
      else p.narObjectSize = size;
    }
    const sized = inputOf(b.paths, { orphanCandidates });
    const cap = b.capPercent === undefined ? undefined : (sized.bucketBytes * b.capPercent) / 100 / GIB;
    return inputOf(b.paths, {
      orphanCandidates,
      protectedHashParts: new Set(b.protectedIds.map(h)),
      settings: {
        ...SETTINGS,
        retentionDays: b.retentionDays,
        targetPercentage: b.targetPercentage,
        ...(cap !== undefined ? { maxSizeGb: cap } : {}),
      },
    });
  });

function isPinned(p: PrunePath, input: PruneInput): boolean {
  return p.malformed || NOW - p.uploadedAt < GRACE_MS || (input.protectedHashParts?.has(p.hashPart) ?? false);
}

function analyse(input: PruneInput) {
  const plan = planPrune(input);
  const gone = new Set(plan.paths.map((p) => p.hashPart));
  const remaining = input.paths.filter((p) => !gone.has(p.hashPart));
  const deletedKeys = new Set([...plan.narinfoKeys, ...plan.dataKeys]);
  return { plan, gone, remaining, deletedKeys };
}

test('every remaining path keeps its narinfo, its NAR and every reference in the bucket', () => {
  fc.assert(
    fc.property(bucket, (input) => {
      const { remaining, gone, deletedKeys } = analyse(input);
      const inBucket = new Set(input.paths.map((p) => p.hashPart));
      for (const p of remaining) {
        assert.ok(!deletedKeys.has(p.narinfoKey));
        if (p.narKey !== undefined) assert.ok(!deletedKeys.has(p.narKey), `NAR of kept ${p.hashPart}`);
        for (const r of p.references) {
          if (inBucket.has(r)) assert.ok(!gone.has(r), `${p.hashPart} keeps ${r}`);
        }
      }
    }),
    { numRuns: 400 },
  );
});

test('a delete cut short after any narinfo leaves no narinfo whose reference was deleted', () => {
  fc.assert(
    fc.property(bucket, (input) => {
      const { plan } = analyse(input);
      const byKey = new Map(input.paths.map((p) => [p.narinfoKey, p]));
      const present = new Set(input.paths.map((p) => p.hashPart));
      // Walk the narinfo deletes in plan order; after each, every narinfo still there must have
      // the narinfos of its (in-bucket) references.
      for (const key of plan.narinfoKeys) {
        const p = byKey.get(key);
        assert.ok(p, `plan deletes an unknown narinfo ${key}`);
        present.delete(p.hashPart);
        for (const q of input.paths) {
          if (!present.has(q.hashPart)) continue;
          for (const r of q.references) {
            if (r === q.hashPart || !byKey.has(`${r}.narinfo`)) continue;
            assert.ok(present.has(r), `after deleting ${key}, ${q.hashPart} lost its reference ${r}`);
          }
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('only narinfos, NARs of deleted paths and old orphans are deleted; nix-cache-info never', () => {
  fc.assert(
    fc.property(bucket, (input) => {
      const { plan, gone } = analyse(input);
      const allowed = new Set<string>();
      for (const p of input.paths) {
        if (!gone.has(p.hashPart)) continue;
        if (p.narKey !== undefined && p.narObjectSize !== undefined) allowed.add(p.narKey);
      }
      for (const o of input.orphanCandidates) {
        if (NOW - o.lastModified >= GRACE_MS) allowed.add(o.key);
        else assert.ok(!plan.dataKeys.includes(o.key), 'young orphan kept');
      }
      for (const k of plan.dataKeys) assert.ok(allowed.has(k), k);
      assert.equal(new Set(plan.dataKeys).size, plan.dataKeys.length, 'each key once');
      assert.equal(plan.narinfoKeys.length, gone.size);
      assert.ok(![...plan.narinfoKeys, ...plan.dataKeys].includes('nix-cache-info'));
      for (const p of input.paths) if (isPinned(p, input)) assert.ok(!gone.has(p.hashPart));
    }),
    { numRuns: 400 },
  );
});

test('nothing is kept without a reason: each remaining path is fresh, pinned or referenced', () => {
  fc.assert(
    fc.property(bucket, (input) => {
      const { remaining } = analyse(input);
      const referenced = new Set(remaining.flatMap((p) => p.references.filter((r) => r !== p.hashPart)));
      const retentionMs = input.settings.retentionDays * DAY;
      for (const p of remaining) {
        const fresh = NOW - p.uploadedAt <= retentionMs && p.narObjectSize !== undefined;
        assert.ok(fresh || isPinned(p, input) || referenced.has(p.hashPart), `why keep ${p.hashPart}?`);
      }
    }),
    { numRuns: 400 },
  );
});

test('sizes add up, and the size target is met unless every remaining root is pinned', () => {
  fc.assert(
    fc.property(bucket, (input) => {
      const { plan, remaining, deletedKeys } = analyse(input);
      const sizes = new Map<string, number>();
      for (const p of input.paths) {
        sizes.set(p.narinfoKey, p.narinfoSize);
        if (p.narKey !== undefined && p.narObjectSize !== undefined) sizes.set(p.narKey, p.narObjectSize);
      }
      for (const o of input.orphanCandidates) sizes.set(o.key, o.size);
      const freed = [...deletedKeys].reduce((n, k) => n + (sizes.get(k) ?? 0), 0);
      assert.equal(plan.sizeAfter, input.bucketBytes - freed);
      const evicted = plan.paths.filter((p) => p.reason === 'size');
      const last = evicted[evicted.length - 1];
      if (last) {
        // Eviction stops as soon as the target is met: without the last closure it was not.
        assert.ok(plan.sizeTarget !== undefined);
        const lastBytes = evicted
          .filter((p) => p.evictedWith === last.evictedWith)
          .reduce((n, p) => n + p.bytes, 0);
        assert.ok(plan.sizeAfter + lastBytes > plan.sizeTarget, 'evicted more than needed');
        const roots = evicted.map((p) => p.evictedWith);
        const order = [...new Set(roots)].map((r) => input.paths.find((p) => p.hashPart === r)!.uploadedAt);
        assert.deepEqual(
          order,
          [...order].sort((a, b) => a - b),
          'oldest roots first',
        );
      }
      if (plan.sizeTarget === undefined || plan.sizeAfter <= plan.sizeTarget) return;
      assert.equal(plan.targetMet, false);
      const referenced = new Set(remaining.flatMap((p) => p.references.filter((r) => r !== p.hashPart)));
      for (const p of remaining) {
        if (!referenced.has(p.hashPart)) assert.ok(isPinned(p, input), `root ${p.hashPart} could go`);
      }
    }),
    { numRuns: 400 },
  );
});
