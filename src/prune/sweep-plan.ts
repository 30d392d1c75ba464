// Mark, wait, sweep: what one prune step does to a bucket shared by hosts that upload and prune
// without talking to each other. PURE: a snapshot of the bucket (listed after `now` was read from
// the server), the state objects under `.loft/prune/` (src/format/loft-state.ts), what the policy
// would delete today (src/prune/policy.ts), and the server's `now`.
//
// A path goes in three steps, each in a later run and each decided on a fresh listing:
//  1. mark:  the policy condemns it (a mark object; its LastModified is the mark time m).
//  2. doom:  once the mark is `grace` old, condemned paths whose narinfo was not rewritten since m
//            (LastModified >= m counts as revived) and that no other narinfo in the bucket
//            references are doomed (a doom object, time d).
//  3. sweep: once the doom is `settle` old, its paths are deleted, again only those not revived and
//            not referenced by a narinfo that stays, referrers first. Their NARs, listings and logs
//            are announced in a gone object first and deleted a grace period after it, when no
//            narinfo names them then. Orphan NARs take the same road.
// Why no narinfo can end up naming something deleted (docs/architecture.md has the long form):
// an uploader lists the state objects, and publishes only within `settle` of that listing, or it
// lists again first. One that listed before d commits before d + settle, so before the sweep's
// listing, which then sees its narinfo (and keeps what it references, or sees the revival); one
// that listed after d sees the doom and publishes nothing that relies on a doomed path. The same
// holds for NAR keys and gone objects with `grace` (> settle) in place of `settle`.
//
// With grace 0 (one host that deletes at once, on a bucket without a grace record) every step is
// due at once: what the policy condemns, and what earlier marks and dooms name, is deleted in this
// prune (narinfos referrers first, then their NARs), and every state object goes. No uploader is
// protected then, as before mark, wait, sweep: grace 0 is for a bucket one host writes.
import {
  settleMsOf,
  type DoomEntry,
  type StateObject,
  type DoomBody,
  type GoneBody,
  type MarkBody,
} from '../format/loft-state.js';
import { PathGraph } from './path-graph.js';
import type { PrunePath } from './policy.js';

export interface SweepInput {
  paths: readonly PrunePath[];
  /** Every key in the listing, to tell which announced keys still exist. */
  keys: ReadonlySet<string>;
  marks: readonly StateObject<MarkBody>[];
  dooms: readonly StateObject<DoomBody>[];
  gones: readonly StateObject<GoneBody>[];
  /** Hash parts the policy would delete today. */
  condemn: readonly string[];
  /** Orphan NAR keys the policy would delete today (older than the orphan grace). */
  orphans: readonly string[];
  now: number;
  graceMs: number;
  settleMs: number;
  /** Never marked, doomed or deleted (this host's uploads rely on them). */
  protectedHashParts?: ReadonlySet<string>;
}

export interface SweepPlan {
  /**
   * Step 3: narinfo keys to delete, referrers first, after `goneKeys` is announced, and only
   * until this prune's `now` + settle (the caller's own clock measures that duration).
   */
  deleteNarinfos: string[];
  deletedPaths: string[];
  /** A new gone object: keys of deleted paths and new orphans. Empty: none is written. */
  goneKeys: string[];
  /** Dooms past d + 3 settle: no prune deletes for them any more. */
  removeDooms: string[];
  /** Keys of due gone objects nobody names any more; then the gone objects go. */
  deleteKeys: string[];
  removeGones: string[];
  /** Step 2: a new doom object (empty: none), then the due marks go. */
  doom: DoomEntry[];
  removeMarks: string[];
  /** Step 1: a new mark object (empty: none). */
  mark: string[];
}

export function planSweep(input: SweepInput): SweepPlan {
  const graph = new PathGraph(input.paths);
  const byHash = new Map(input.paths.map((p) => [p.hashPart, p]));
  const safe = (h: string, since: number) => {
    const p = byHash.get(h);
    return p !== undefined && !p.malformed && p.uploadedAt < since && !input.protectedHashParts?.has(h);
  };
  if (input.graceMs === 0) return planAtOnce(input, graph, byHash, safe);
  // A doom is carried out only by a prune whose `now` falls in [d + settle, d + 2 settle), and that
  // prune deletes only until its own `now` + settle: every delete of a doom's narinfos happens
  // before d + 3 settle, and only then does the doom object go (`removeDooms`). An uploader that
  // sees a doom publishes nothing that relies on its paths, so none is re-uploaded while a prune
  // that listed the bucket earlier may still delete it.
  const { now, settleMs } = input;
  const dueDooms = input.dooms.filter((d) => d.at <= now - settleMs && now < d.at + 2 * settleMs);
  // A doom written under a longer grace (before the bucket's grace was shortened) lives by its own
  // settle: a prune that swept it then may still be deleting.
  const liveDooms = input.dooms.filter(
    (d) => now < d.at + 3 * Math.max(settleMs, d.body.grace === undefined ? 0 : settleMsOf(d.body.grace)),
  );
  const sweepable = entries(dueDooms).filter((e) => safe(e.h, e.marked));
  const doomedStill = entries(liveDooms).filter((e) => safe(e.h, e.marked));
  const deleted = unreferenced(
    graph,
    input.paths,
    sweepable.map((e) => e.h),
  );

  const dueMarks = input.marks.filter((m) => m.at <= now - input.graceMs);
  const inDoom = new Set(doomedStill.map((e) => e.h));
  const markedDue = dueMarks.flatMap((m) =>
    m.body.paths.filter((h) => safe(h, m.at) && !inDoom.has(h)).map((h) => ({ h, marked: m.at })),
  );
  const doomSet = unreferenced(graph, input.paths, [...markedDue.map((e) => e.h), ...inDoom]);
  const doom = uniqueBy(markedDue.filter((e) => doomSet.has(e.h)));

  const dueGones = input.gones.filter((g) => g.at <= now - input.graceMs);
  const named = new Set<string>();
  let blind = false;
  for (const p of input.paths) {
    if (p.narKey !== undefined) named.add(p.narKey);
    else if (p.malformed) blind = true; // it may name any NAR: delete none this run
    for (const o of p.extraObjects) if (!deleted.has(p.hashPart)) named.add(o.key);
  }
  const deleteKeys = blind ? [] : unique(dueGones.flatMap((g) => g.body.keys)).filter((k) => !named.has(k));

  // A key already announced by a gone object that stays needs no second announcement.
  const removedGones = new Set(blind ? [] : dueGones.map((g) => g.key));
  const pending = new Set(input.gones.filter((g) => !removedGones.has(g.key)).flatMap((g) => g.body.keys));
  const goneKeys = unique([
    ...[...deleted].flatMap((h) => dataKeysOf(byHash.get(h))),
    ...input.orphans.filter((k) => input.keys.has(k) && !deleteKeys.includes(k)),
  ]).filter((k) => !pending.has(k));
  const known = new Set([...input.marks.flatMap((m) => m.body.paths), ...inDoom]);
  return {
    deleteNarinfos: graph.referrersFirst([...deleted]).map((h) => graph.get(h).narinfoKey),
    deletedPaths: [...deleted],
    goneKeys,
    removeDooms: input.dooms.filter((d) => !liveDooms.includes(d)).map((d) => d.key),
    deleteKeys,
    removeGones: [...removedGones],
    doom,
    removeMarks: dueMarks.map((m) => m.key),
    mark: unique(
      input.condemn.filter((h) => !known.has(h) && byHash.has(h) && !input.protectedHashParts?.has(h)),
    ),
  };
}

/** Grace 0: mark, doom and sweep in one plan, keys deleted with their narinfos. */
function planAtOnce(
  input: SweepInput,
  graph: PathGraph<PrunePath>,
  byHash: ReadonlyMap<string, PrunePath>,
  safe: (h: string, since: number) => boolean,
): SweepPlan {
  const earlier = [
    ...input.marks.flatMap((m) => m.body.paths.filter((h) => safe(h, m.at))),
    ...entries(input.dooms)
      .filter((e) => safe(e.h, e.marked))
      .map((e) => e.h),
  ];
  const condemned = input.condemn.filter((h) => byHash.has(h) && !input.protectedHashParts?.has(h));
  const deleted = unreferenced(graph, input.paths, unique([...condemned, ...earlier]));
  const named = new Set<string>();
  let blind = false;
  for (const p of input.paths) {
    if (deleted.has(p.hashPart)) continue;
    if (p.narKey !== undefined) named.add(p.narKey);
    else if (p.malformed) blind = true;
    for (const o of p.extraObjects) named.add(o.key);
  }
  const announced = blind ? [] : input.gones.flatMap((g) => g.body.keys);
  const orphans = input.orphans.filter((k) => input.keys.has(k));
  const deleteKeys = unique([
    ...[...deleted].flatMap((h) => dataKeysOf(byHash.get(h))),
    ...orphans,
    ...announced,
  ]);
  return {
    deleteNarinfos: graph.referrersFirst([...deleted]).map((h) => graph.get(h).narinfoKey),
    deletedPaths: [...deleted],
    goneKeys: [],
    removeDooms: input.dooms.map((d) => d.key),
    deleteKeys: deleteKeys.filter((k) => !named.has(k) && input.keys.has(k)),
    removeGones: blind ? [] : input.gones.map((g) => g.key),
    doom: [],
    removeMarks: input.marks.map((m) => m.key),
    mark: [],
  };
}

/** Of `candidates`, those no narinfo outside the candidates reaches through References. */
function unreferenced(graph: PathGraph, paths: readonly PrunePath[], candidates: string[]): Set<string> {
  const set = new Set(candidates);
  const kept = graph.reachable(paths.filter((p) => !set.has(p.hashPart)));
  return new Set(candidates.filter((h) => !kept.has(h)));
}

function dataKeysOf(p: PrunePath | undefined): string[] {
  if (!p) return [];
  return [...(p.narKey !== undefined ? [p.narKey] : []), ...p.extraObjects.map((o) => o.key)];
}

function entries(dooms: readonly StateObject<DoomBody>[]): DoomEntry[] {
  return dooms.flatMap((d) => d.body.paths);
}

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

function uniqueBy(es: DoomEntry[]): DoomEntry[] {
  const seen = new Map<string, DoomEntry>();
  for (const e of es) if (!seen.has(e.h)) seen.set(e.h, e);
  return [...seen.values()];
}
