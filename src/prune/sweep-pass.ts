// One pass of a prune (src/prune/prune-run.ts runs one or two): list the bucket, ask the policy what
// it would delete today, plan the due steps of mark, wait, sweep (sweep-plan.ts) and carry them
// out. Steps go in the order that keeps a crash harmless: a gone object is written before the
// narinfos it announces are deleted, every narinfo before any NAR, and a doom object before the
// marks it replaces are removed. With grace 0 the pass looks at the bucket a second time right
// before deleting (cheap: one listing, and only narinfos written meanwhile are fetched): reading
// thousands of narinfos takes a while, and an upload may have committed a referrer meanwhile.
import { randomBytes } from 'node:crypto';
import {
  CLOCK_KEY,
  renderState,
  stateKey,
  type DoomBody,
  type GoneBody,
  type GraceSetting,
  type MarkBody,
  type StateBody,
  type StateKind,
  type StateObject,
} from '../format/loft-state.js';
import { StorageError } from '../errors.js';
import { readPublishedRoots, readStates } from '../storage/loft-state-store.js';
import type { BeforeDelete, ObjectStore } from '../storage/object-store.js';
import type { PresenceCache } from '../state/presence.js';
import { takeInventory, type Inventory, type InventoryDeps } from './inventory.js';
import { planPrune, type PrunePlan, type PruneSettingsInput } from './policy.js';
import { planSweep, type SweepPlan } from './sweep-plan.js';
import { abortUploads } from './abort-uploads.js';

export interface PruneRunDeps extends InventoryDeps {
  cache: PresenceCache;
}

export interface PruneSettings extends PruneSettingsInput {
  /** This host's prune_grace_hours; the bucket's grace record, when there is one, wins. */
  graceHours: number;
}

export interface PruneRunOptions {
  settings: PruneSettings;
  dryRun: boolean;
  /** The name this host's lock, lease and state objects carry. */
  host: string;
  /** Read right before each plan: paths this host's uploads rely on. */
  protectedHashParts?: () => ReadonlySet<string>;
  /** After dooming, wait `settle` and carry the doom out in this run (default true). */
  waitForDoom?: boolean;
}

export interface PruneCounts {
  marked: number;
  doomed: number;
  narinfosDeleted: number;
  keysAnnounced: number;
  keysDeleted: number;
  abortedUploads: number;
  /** Doomed narinfos left for the next run because this one ran out of its `settle` budget. */
  leftOver: number;
  /** Narinfos fetched, over every look at the bucket. */
  narinfosRead: number;
  /** ListObjectsV2 pages read (estimated from the object count: 1000 keys a page). */
  listPages: number;
  /** Delete requests sent (the store says how many keys each takes). */
  deleteRequests: number;
}

export function zeroCounts(): PruneCounts {
  return {
    marked: 0,
    doomed: 0,
    narinfosDeleted: 0,
    keysAnnounced: 0,
    keysDeleted: 0,
    abortedUploads: 0,
    leftOver: 0,
    narinfosRead: 0,
    listPages: 0,
    deleteRequests: 0,
  };
}

const DAY_MS = 86_400_000;

interface Look {
  inventory: Inventory;
  plan: SweepPlan;
  policy: PrunePlan;
}

export async function onePass(
  deps: PruneRunDeps,
  opts: PruneRunOptions,
  grace: GraceSetting,
  counts: PruneCounts,
): Promise<Look> {
  const now = opts.dryRun ? Date.now() : await serverNow(deps.store, deps.signal);
  const started = performance.now();
  let look = await lookAt(deps, opts, grace, now, counts);
  if (opts.dryRun) return look;
  const deletes = look.plan.deleteNarinfos.length + look.plan.deleteKeys.length;
  if (grace.grace === 0 && deletes > 0) look = await lookAt(deps, opts, grace, now, counts);
  // Past its budget a prune may no longer delete: an uploader may take the doom's end for the end.
  const inBudget = () => grace.grace === 0 || performance.now() - started < grace.settle * 0.8;
  await apply(look.plan, deps, opts.host, grace.grace, counts, inBudget);
  counts.abortedUploads += await abortUploads(look.policy.abortUploads, deps);
  return look;
}

async function lookAt(
  deps: PruneRunDeps,
  opts: PruneRunOptions,
  grace: GraceSetting,
  now: number,
  counts: PruneCounts,
): Promise<Look> {
  const inventory = await takeInventory(deps);
  counts.narinfosRead += inventory.narinfosRead;
  counts.listPages += Math.max(1, Math.ceil(inventory.objects / 1000));
  const { states } = await readStates(deps);
  const roots = await readPublishedRoots(deps, now - opts.settings.retentionDays * DAY_MS);
  const own = opts.protectedHashParts?.() ?? new Set<string>();
  const protectedHashParts = new Set([...own, ...roots]);
  const policy = planPrune({
    paths: inventory.paths,
    orphanCandidates: inventory.orphanCandidates,
    pendingUploads: inventory.pendingUploads,
    bucketBytes: inventory.bucketBytes,
    now,
    settings: opts.settings,
    protectedHashParts,
  });
  const plan = planSweep({
    paths: inventory.paths,
    keys: inventory.keys,
    marks: ofKind<MarkBody>(states, 'mark'),
    dooms: ofKind<DoomBody>(states, 'doom'),
    gones: ofKind<GoneBody>(states, 'gone'),
    condemn: policy.paths.map((p) => p.hashPart),
    orphans: policy.orphans.map((o) => o.key),
    now,
    graceMs: grace.grace,
    settleMs: grace.settle,
    protectedHashParts,
  });
  return { inventory, plan, policy };
}

async function apply(
  plan: SweepPlan,
  deps: PruneRunDeps,
  host: string,
  grace: number,
  counts: PruneCounts,
  inBudget: () => boolean,
): Promise<void> {
  const put = (kind: StateKind, body: StateBody) =>
    deps.store.putBytes(stateKey(kind, newId()), renderState({ ...body, grace }), {
      contentType: 'application/json',
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
  const counted: BeforeDelete = () => {
    counts.deleteRequests++;
    return true;
  };
  const del = (keys: string[], before = counted) =>
    keys.length > 0 ? deps.store.deleteMany(keys, deps.signal, before) : Promise.resolve();
  if (plan.goneKeys.length > 0) {
    await put('gone', { kind: 'gone', host, paths: plan.deletedPaths, keys: plan.goneKeys });
    counts.keysAnnounced += plan.goneKeys.length;
  }
  deps.cache.remove(plan.deletedPaths);
  let narinfos = 0;
  await del(plan.deleteNarinfos, (n) => {
    if (!inBudget()) return false;
    narinfos += n;
    return counted(n);
  });
  counts.narinfosDeleted += narinfos;
  counts.leftOver += plan.deleteNarinfos.length - narinfos;
  deps.db.remove(plan.deletedPaths);
  await del(plan.deleteKeys);
  counts.keysDeleted += plan.deleteKeys.length;
  await del(plan.removeGones);
  if (plan.doom.length > 0) await put('doom', { kind: 'doom', host, paths: plan.doom });
  counts.doomed += plan.doom.length;
  await del(plan.removeMarks);
  if (plan.mark.length > 0) await put('mark', { kind: 'mark', host, paths: plan.mark });
  counts.marked += plan.mark.length;
  await del(plan.removeDooms);
}

/** The server's clock: the LastModified of an object written just now. */
export async function serverNow(store: ObjectStore, signal?: AbortSignal): Promise<number> {
  await store.putBytes(CLOCK_KEY, 'loft\n', { contentType: 'text/plain', ...(signal ? { signal } : {}) });
  const info = await store.head(CLOCK_KEY, signal);
  if (!info) throw new StorageError(`${CLOCK_KEY} was not found right after it was written`);
  return info.lastModified.getTime();
}

function ofKind<B extends StateBody>(states: readonly StateObject[], kind: B['kind']): StateObject<B>[] {
  return states.filter((s): s is StateObject<B> => s.body.kind === kind);
}

function newId(): string {
  return `${Date.now().toString(36)}-${randomBytes(5).toString('hex')}`;
}
