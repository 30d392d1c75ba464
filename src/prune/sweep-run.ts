// One prune of a bucket that several hosts share (prune_grace_hours > 0): mark, wait, sweep
// (src/prune/sweep-plan.ts says what and why). A run reads the server's time, lists the bucket,
// asks the policy what it would delete today, and carries out every step that is due; when it
// dooms paths and `settle` is short, it waits `settle` and runs once more, so a doom is carried out
// in its window without waiting for the next scheduled prune. Steps go in the order that keeps a
// crash harmless: a gone object is written before the narinfos it announces are deleted, and a
// doom object before the marks it replaces are removed.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CLOCK_KEY,
  renderState,
  settleMsOf,
  stateKey,
  type DoomBody,
  type GoneBody,
  type MarkBody,
  type StateBody,
  type StateKind,
  type StateObject,
} from '../format/loft-state.js';
import { PruneBusyError, StorageError } from '../errors.js';
import { readPublishedRoots, readStates } from '../storage/loft-state-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import { takeInventory, type Inventory } from './inventory.js';
import { planPrune, type PruneSettingsInput } from './policy.js';
import { takeLease } from './lease.js';
import { planSweep, type SweepPlan } from './sweep-plan.js';
import { abortUploads, DELETE_BATCH } from './pruner.js';
import type { PruneRunDeps } from './prune-run.js';

export interface SweepSettings extends PruneSettingsInput {
  graceHours: number;
}

export interface SweepRunOptions {
  settings: SweepSettings;
  dryRun: boolean;
  host: string;
  protectedHashParts?: () => ReadonlySet<string>;
  /** After dooming, wait `settle` and carry the doom out in this run (default true). */
  waitForDoom?: boolean;
}

export interface SweepCounts {
  marked: number;
  doomed: number;
  narinfosDeleted: number;
  keysAnnounced: number;
  keysDeleted: number;
  abortedUploads: number;
  /** Doomed narinfos left for the next run because this one ran out of its `settle` budget. */
  leftOver: number;
}

export type LeaseState =
  { kind: 'held' } | { kind: 'none'; reason: string } | { kind: 'busy'; holder: string };

export interface SweepResult {
  counts: SweepCounts;
  /** The last pass's listing and plan; absent when another host's lease stopped the run. */
  inventory?: Inventory;
  plan?: SweepPlan;
  lease: LeaseState;
  passes: number;
  graceMs: number;
  settleMs: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export async function runSweepOnce(deps: PruneRunDeps, opts: SweepRunOptions): Promise<SweepResult> {
  if (opts.dryRun) return sweepPasses(deps, opts);
  const holder = deps.db.tryLock({ pid: process.pid, host: hostname() });
  if (holder) {
    throw new PruneBusyError(
      `another prune is running (pid ${holder.pid} on ${holder.host}); try again when it has finished`,
    );
  }
  try {
    const lease = await takeLease(
      deps.store,
      opts.host,
      await serverNow(deps.store, deps.signal),
      deps.logger,
    );
    if (lease.kind === 'busy') {
      deps.logger.info({ holder: lease.holder }, 'another host holds the prune lease: nothing to do');
      return { counts: zeroCounts(), lease, passes: 0, graceMs: 0, settleMs: 0 };
    }
    try {
      const result = await sweepPasses(deps, opts);
      return { ...result, lease: lease.kind === 'held' ? { kind: 'held' } : lease };
    } finally {
      if (lease.kind === 'held') await lease.release();
    }
  } finally {
    deps.db.unlock();
  }
}

function zeroCounts(): SweepCounts {
  return {
    marked: 0,
    doomed: 0,
    narinfosDeleted: 0,
    keysAnnounced: 0,
    keysDeleted: 0,
    abortedUploads: 0,
    leftOver: 0,
  };
}

async function sweepPasses(deps: PruneRunDeps, opts: SweepRunOptions): Promise<SweepResult> {
  const graceMs = opts.settings.graceHours * HOUR_MS;
  const settleMs = settleMsOf(graceMs);
  const counts = zeroCounts();
  let passes = 0;
  for (;;) {
    passes++;
    const { inventory, plan } = await onePass(deps, opts, counts, graceMs, settleMs);
    if (opts.dryRun || plan.doom.length === 0 || passes > 1 || opts.waitForDoom === false) {
      return {
        counts,
        inventory,
        plan,
        passes,
        graceMs,
        settleMs,
        lease: { kind: 'none', reason: 'dry run' },
      };
    }
    deps.logger.info({ settleMs }, 'paths doomed: waiting to carry the doom out in its window');
    // Into the doom's window [settle, 2 settle), with room for LastModified's whole seconds.
    await sleep(
      settleMs + Math.min(settleMs / 4, 2000),
      undefined,
      deps.signal ? { signal: deps.signal } : {},
    );
  }
}

async function onePass(
  deps: PruneRunDeps,
  opts: SweepRunOptions,
  counts: SweepCounts,
  graceMs: number,
  settleMs: number,
): Promise<{ inventory: Inventory; plan: SweepPlan }> {
  // A dry run writes nothing, not even the clock: it judges ages by this host's clock.
  const now = opts.dryRun ? Date.now() : await serverNow(deps.store, deps.signal);
  const started = performance.now();
  const inventory = await takeInventory(deps);
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
    graceMs,
    settleMs,
    protectedHashParts,
  });
  if (opts.dryRun) return { inventory, plan };
  await apply(plan, deps, opts.host, graceMs, counts, () => performance.now() - started < settleMs * 0.8);
  counts.abortedUploads += await abortUploads(policy.abortUploads, deps);
  return { inventory, plan };
}

async function apply(
  plan: SweepPlan,
  deps: PruneRunDeps,
  host: string,
  grace: number,
  counts: SweepCounts,
  inBudget: () => boolean,
): Promise<void> {
  const put = (kind: StateKind, body: StateBody) =>
    deps.store.putBytes(stateKey(kind, newId()), renderState({ ...body, grace }), {
      contentType: 'application/json',
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
  if (plan.goneKeys.length > 0) {
    await put('gone', { kind: 'gone', host, paths: plan.deletedPaths, keys: plan.goneKeys });
    counts.keysAnnounced += plan.goneKeys.length;
  }
  deps.cache.remove(plan.deletedPaths);
  for (let i = 0; i < plan.deleteNarinfos.length; i += DELETE_BATCH) {
    // Past its budget a prune may no longer delete: an uploader may take the doom's end for the end.
    if (!inBudget()) {
      counts.leftOver += plan.deleteNarinfos.length - i;
      break;
    }
    const batch = plan.deleteNarinfos.slice(i, i + DELETE_BATCH);
    await deps.store.deleteMany(batch, deps.signal);
    counts.narinfosDeleted += batch.length;
  }
  deps.db.remove(plan.deletedPaths);
  if (plan.deleteKeys.length > 0) await deps.store.deleteMany(plan.deleteKeys, deps.signal);
  counts.keysDeleted += plan.deleteKeys.length;
  if (plan.removeGones.length > 0) await deps.store.deleteMany(plan.removeGones, deps.signal);
  if (plan.doom.length > 0) await put('doom', { kind: 'doom', host, paths: plan.doom });
  counts.doomed += plan.doom.length;
  if (plan.removeMarks.length > 0) await deps.store.deleteMany(plan.removeMarks, deps.signal);
  if (plan.mark.length > 0) await put('mark', { kind: 'mark', host, paths: plan.mark });
  counts.marked += plan.mark.length;
  if (plan.removeDooms.length > 0) await deps.store.deleteMany(plan.removeDooms, deps.signal);
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
