// The steps of mark, wait, sweep on small hand-made buckets (the random interleavings are in
// sweep-model.test.ts), and the state objects' wire format.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseState,
  pruneView,
  renderState,
  stateKey,
  stateKindOfKey,
  type DoomBody,
  type GoneBody,
  type MarkBody,
  type StateObject,
} from '../../../src/format/loft-state.js';
import { planSweep, type SweepInput } from '../../../src/prune/sweep-plan.js';
import { h, NOW, path } from './policy-fixtures.js';

const HOUR = 3_600_000;
const GRACE = 24 * HOUR;
const SETTLE = 5 * 60_000;

function input(over: Partial<SweepInput>): SweepInput {
  const paths = over.paths ?? [];
  return {
    paths,
    keys: new Set(paths.flatMap((p) => [p.narinfoKey, p.narKey ?? ''])),
    marks: [],
    dooms: [],
    gones: [],
    condemn: [],
    orphans: [],
    now: NOW,
    graceMs: GRACE,
    settleMs: SETTLE,
    ...over,
  };
}
const mark = (at: number, ...ids: number[]): StateObject<MarkBody> => ({
  key: `.loft/prune/mark-${at}.json`,
  at,
  body: { kind: 'mark', host: 'a', paths: ids.map(h) },
});
const doom = (at: number, marked: number, ...ids: number[]): StateObject<DoomBody> => ({
  key: `.loft/prune/doom-${at}.json`,
  at,
  body: { kind: 'doom', host: 'a', paths: ids.map((i) => ({ h: h(i), marked })) },
});
const gone = (at: number, ...keys: string[]): StateObject<GoneBody> => ({
  key: `.loft/prune/gone-${at}.json`,
  at,
  body: { kind: 'gone', host: 'a', paths: [], keys },
});
// 0 <- 1 (1 references 0), 2 alone; all uploaded 40 days ago.
const old = [
  path({ id: 0, ageDays: 40 }),
  path({ id: 1, ageDays: 40, refs: [0] }),
  path({ id: 2, ageDays: 40 }),
];

describe('planSweep', () => {
  test('a condemned path is only marked: nothing is deleted in the run that condemns it', () => {
    const plan = planSweep(input({ paths: old, condemn: [h(1), h(0)] }));
    assert.deepEqual(plan.mark, [h(1), h(0)]);
    assert.deepEqual([plan.deleteNarinfos, plan.doom, plan.goneKeys], [[], [], []]);
  });

  test('a mark a grace period old dooms its unreferenced, unrevived paths; younger marks wait', () => {
    const due = planSweep(input({ paths: old, marks: [mark(NOW - GRACE, 0, 2)] }));
    assert.deepEqual(due.doom, [{ h: h(2), marked: NOW - GRACE }], 'path 0 is referenced by path 1');
    assert.deepEqual(due.removeMarks, [`.loft/prune/mark-${NOW - GRACE}.json`]);
    const young = planSweep(input({ paths: old, marks: [mark(NOW - GRACE + 1, 2)] }));
    assert.deepEqual([young.doom, young.removeMarks], [[], []]);
  });

  test('a narinfo rewritten at or after the mark time revives its path', () => {
    const revived = [path({ id: 2, ageDays: 1 })];
    const markAt = revived[0]!.uploadedAt;
    const plan = planSweep(input({ paths: revived, marks: [mark(markAt, 2)], now: markAt + GRACE }));
    assert.deepEqual(plan.doom, []);
  });

  test('a doom is carried out only between settle and twice settle after it, referrers first', () => {
    const d = (at: number) => doom(at, NOW - 2 * GRACE, 0, 1);
    const plan = planSweep(input({ paths: old, dooms: [d(NOW - SETTLE)] }));
    assert.deepEqual(plan.deleteNarinfos, [`${h(1)}.narinfo`, `${h(0)}.narinfo`]);
    assert.deepEqual(plan.goneKeys.sort(), [`nar/${h(0)}.nar.zst`, `nar/${h(1)}.nar.zst`]);
    assert.deepEqual(plan.removeDooms, [], 'the doom stays until 3 settle');
    assert.deepEqual(planSweep(input({ paths: old, dooms: [d(NOW - SETTLE + 1)] })).deleteNarinfos, []);
    assert.deepEqual(planSweep(input({ paths: old, dooms: [d(NOW - 2 * SETTLE)] })).deleteNarinfos, []);
    const expired = planSweep(input({ paths: old, dooms: [d(NOW - 3 * SETTLE)] }));
    assert.deepEqual(expired.removeDooms, [`.loft/prune/doom-${NOW - 3 * SETTLE}.json`]);
  });

  test('a doomed path that a narinfo outside the doom references stays', () => {
    const young = [...old, path({ id: 3, ageDays: 0, refs: [2] })];
    const plan = planSweep(input({ paths: young, dooms: [doom(NOW - SETTLE, NOW - 2 * GRACE, 2)] }));
    assert.deepEqual(plan.deleteNarinfos, []);
  });

  test('announced keys go a grace period later, unless a narinfo names them then', () => {
    const named = `nar/${h(0)}.nar.zst`;
    const gones = [gone(NOW - GRACE, 'nar/x.nar.zst', named), gone(NOW - GRACE + 1, 'nar/y.nar.zst')];
    const plan = planSweep(input({ paths: old, gones }));
    assert.deepEqual(plan.deleteKeys, ['nar/x.nar.zst']);
    assert.deepEqual(plan.removeGones, [`.loft/prune/gone-${NOW - GRACE}.json`]);
  });

  test('orphans are announced once, never deleted in the run that finds them', () => {
    const keys = new Set(['nar/o1.nar.zst', 'nar/o2.nar.zst']);
    const plan = planSweep(
      input({ keys, orphans: ['nar/o1.nar.zst', 'nar/o2.nar.zst'], gones: [gone(NOW, 'nar/o2.nar.zst')] }),
    );
    assert.deepEqual([plan.goneKeys, plan.deleteKeys], [['nar/o1.nar.zst'], []]);
  });

  test('a malformed narinfo (it may name any NAR) holds back every key deletion', () => {
    const { narKey: _none, ...noUrl } = path({ id: 5, ageDays: 1, malformed: true });
    const blind = [noUrl];
    const plan = planSweep(input({ paths: blind, gones: [gone(NOW - GRACE, 'nar/x.nar.zst')] }));
    assert.deepEqual([plan.deleteKeys, plan.removeGones], [[], []]);
  });
});

describe('loft state objects', () => {
  test('round trip, key shapes, and a view for uploaders', () => {
    const key = stateKey('doom', '19abc-1f2e');
    assert.equal(key, '.loft/prune/doom-19abc-1f2e.json');
    assert.equal(stateKindOfKey(key), 'doom');
    assert.equal(stateKindOfKey('.loft/prune/other.json'), undefined);
    assert.equal(stateKindOfKey(`${h(1)}.narinfo`), undefined);
    const body: DoomBody = { kind: 'doom', host: 'ci-1', paths: [{ h: h(1), marked: 5 }] };
    assert.deepEqual(parseState('doom', renderState(body)), body);
    const view = pruneView([
      { key: 'm', at: 1, body: { kind: 'mark', host: 'a', paths: [h(2)] } },
      { key: 'd', at: 1, body },
      { key: 'g', at: 1, body: { kind: 'gone', host: 'a', paths: [h(3)], keys: ['nar/z.nar'] } },
    ]);
    assert.deepEqual(
      [[...view.condemned], [...view.doomed], [...view.gone], [...view.pendingKeys]],
      [[h(2)], [h(1)], [h(3)], ['nar/z.nar']],
    );
  });

  test('objects that are not ours in this version are refused', () => {
    assert.throws(() => parseState('mark', 'garbage'), /not JSON/);
    assert.throws(() => parseState('mark', '{"v":2,"kind":"mark","host":"a","paths":[]}'), /version 1/);
    assert.throws(() => parseState('mark', '{"v":1,"kind":"mark","host":"a","paths":["x"]}'), /bad hash/);
    const loftKey = '{"v":1,"kind":"gone","host":"a","paths":[],"keys":[".loft/clock"]}';
    assert.throws(() => parseState('gone', loftKey), /not an object of the cache/);
    assert.throws(() => stateKey('mark', '../x'), /bad loft state object id/);
  });
});
