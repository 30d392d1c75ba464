// The repair decision: what the local store can mend is mended, the rest is left, or with
// --delete-unrepairable deleted together with everything that references it, referrers first.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHash } from '../../../src/format/hash.js';
import type { PathInfo } from '../../../src/format/path-info.js';
import type { ScannedPath } from '../../../src/verify/bucket-scan.js';
import type { Problem } from '../../../src/verify/problems.js';
import { planRepair } from '../../../src/verify/repair-plan.js';

const H = (c: string) => c.repeat(32);
const [A, B, C, D, E] = ['a', 'b', 'c', 'd', 'f'].map(H) as [string, string, string, string, string];
const path = (h: string) => `/nix/store/${h}-p`;
const info = (h: string): PathInfo => ({
  path: path(h),
  hashPart: h,
  narHash: parseHash(`sha256:${'0'.repeat(52)}`),
  narSize: 1,
  references: [],
  signatures: [],
});
// E -> D -> C (C is broken and not here); B references A; A is fine.
const paths = new Map<string, ScannedPath>(
  [
    [A, []],
    [B, [A]],
    [C, []],
    [D, [C]],
    [E, [D]],
  ].map(([h, refs]) => [h as string, { hashPart: h as string, references: refs as string[] }]),
);
const p = (kind: Problem['kind'], h: string, extra: Partial<Problem> = {}): Problem => ({
  kind,
  key: `${h}.narinfo`,
  hashPart: h,
  detail: kind,
  ...extra,
});

void describe('planRepair', () => {
  void test('valid here: NAR problems re-upload, signature problems re-sign, missing references upload', () => {
    const plan = planRepair({
      problems: [
        p('nar-missing', A),
        p('unsigned', A),
        p('bad-signature', B),
        p('missing-reference', B, { reference: `${D}-p` }),
        p('cache-info', A, { key: 'nix-cache-info' }),
      ],
      paths,
      local: new Map([A, B, D].map((h) => [h, info(h)])),
      deleteUnrepairable: false,
    });
    assert.deepEqual(
      plan.reupload.map((a) => a.info.path),
      [path(A)],
      'A re-uploaded, not also re-signed',
    );
    assert.deepEqual(
      plan.resign.map((a) => a.info.path),
      [path(B)],
    );
    assert.deepEqual(
      plan.uploadMissing.map((a) => a.info.path),
      [path(D)],
    );
    assert.equal(plan.fixCacheInfo, true);
    assert.deepEqual(plan.unmendable, []);
  });

  void test('not valid here: left alone, or deleted with every referrer, referrers first', () => {
    const problems = [p('nar-size', C), p('missing-reference', B, { reference: `${H('g')}-gone` })];
    const kept = planRepair({ problems, paths, local: new Map(), deleteUnrepairable: false });
    assert.deepEqual(kept.unmendable.map((u) => u.key).sort(), [`${B}.narinfo`, `${C}.narinfo`]);
    assert.deepEqual(kept.deletions, []);
    const del = planRepair({ problems, paths, local: new Map(), deleteUnrepairable: true });
    const order = del.deletions.map((d) => d.hashPart);
    assert.deepEqual(new Set(order), new Set([B, C, D, E]), 'A stays: it references nothing broken');
    const before = (x: string, y: string) => order.indexOf(x) < order.indexOf(y);
    assert.ok(before(E, D) && before(D, C), `referrers first: ${order.join(' ')}`);
  });
});
