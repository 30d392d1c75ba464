import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { planClosure, topologicalOrder } from '../../../src/upload/closure-plan.js';
import type { PathInfo } from '../../../src/format/path-info.js';
import { sha256Hash } from '../../../src/format/hash.js';

const S = '/nix/store/';
function p(hashChar: string, name: string): string {
  return `${S}${hashChar.repeat(32)}-${name}`;
}
function info(path: string, references: string[] = [], signatures: string[] = []): PathInfo {
  return {
    path,
    hashPart: path.slice(S.length, S.length + 32),
    narHash: sha256Hash(Buffer.alloc(32)),
    narSize: 8,
    references,
    signatures,
  };
}

const leaf = p('0', 'leaf');
const mid = p('1', 'mid');
const top = p('2', 'top');
const drv = p('3', 'top.drv');

describe('topologicalOrder', () => {
  test('puts references before referrers, ignoring self-references', () => {
    const infos = [info(top, [mid, top]), info(mid, [leaf]), info(leaf, [leaf])];
    const order = topologicalOrder(infos).map((i) => i.path);
    assert.deepEqual(order, [leaf, mid, top]);
  });

  test('handles a deep chain without recursion limits', () => {
    const chain: PathInfo[] = [];
    for (let i = 0; i < 20000; i++) {
      const path = `${S}${String(i)
        .padStart(32, '0')
        .replace(/[eotu]/g, 'a')}-n${i}`;
      chain.push(info(path, i > 0 ? [chain[i - 1]!.path] : []));
    }
    const order = topologicalOrder([...chain].reverse());
    const pos = new Map(order.map((o, i) => [o.path, i]));
    for (const c of chain) for (const r of c.references) assert.ok(pos.get(r)! < pos.get(c.path)!);
    assert.equal(order.length, chain.length);
  });

  test('breaks a cycle instead of looping', () => {
    const a = p('4', 'a');
    const b = p('5', 'b');
    const order = topologicalOrder([info(a, [b]), info(b, [a])]);
    assert.equal(order.length, 2);
  });
});

describe('planClosure', () => {
  const opts = {
    skipSignedByKeys: ['cache.nixos.org-1'],
    uploadDerivations: false,
    explicit: new Set<string>(),
  };

  test('skips paths signed by an upstream key and keeps the rest in order', () => {
    const infos = [info(top, [mid]), info(mid, [leaf]), info(leaf, [], ['cache.nixos.org-1:abc'])];
    const plan = planClosure(infos, [top], opts);
    assert.deepEqual(
      plan.candidates.map((i) => i.path),
      [mid, top],
    );
    assert.deepEqual(plan.skipped, [{ path: leaf, reason: 'upstream-signed' }]);
  });

  test('a signature by another key does not skip', () => {
    const plan = planClosure([info(leaf, [], ['mykey-1:abc'])], [leaf], opts);
    assert.equal(plan.candidates.length, 1);
  });

  test('a requested .drv nobody references is skipped unless named or wanted', () => {
    assert.deepEqual(planClosure([info(drv)], [drv], opts).skipped, [{ path: drv, reason: 'derivation' }]);
    assert.equal(planClosure([info(drv)], [drv], { ...opts, explicit: new Set([drv]) }).candidates.length, 1);
    assert.equal(planClosure([info(drv)], [drv], { ...opts, uploadDerivations: true }).candidates.length, 1);
  });

  test('a .drv referenced by a kept path is kept, so the closure stays whole', () => {
    const plan = planClosure([info(top, [drv]), info(drv)], [top, drv], opts);
    assert.deepEqual(
      plan.candidates.map((i) => i.path),
      [drv, top],
    );
  });
});
