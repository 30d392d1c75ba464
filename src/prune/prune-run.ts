// One prune of a bucket, for `loft --prune` and the daemon's timer alike: take this host's prune
// lock, read the server's time, settle which grace to follow (the bucket's,
// src/prune/bucket-grace.ts), take the bucket's lease where the store allows one (with a grace
// above 0: several hosts may prune), then carry out every step of mark,
// wait, sweep that is due (sweep-pass.ts). When a pass dooms paths and `settle` is short, it waits
// `settle` and runs once more, so a doom is carried out in its window without waiting for the next
// scheduled prune. With grace 0 every step is due at once: one pass deletes what the policy
// condemns (src/prune/sweep-plan.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import type { GraceSetting } from '../format/loft-state.js';
import { takeLease } from './lease.js';
import type { Inventory } from './inventory.js';
import type { PrunePlan } from './policy.js';
import type { SweepPlan } from './sweep-plan.js';
import { graceForPrune } from './bucket-grace.js';
import {
  onePass,
  serverNow,
  zeroCounts,
  type PruneCounts,
  type PruneRunDeps,
  type PruneRunOptions,
} from './sweep-pass.js';

export type { PruneCounts, PruneRunDeps, PruneRunOptions, PruneSettings } from './sweep-pass.js';

export type LeaseState =
  { kind: 'held' } | { kind: 'none'; reason: string } | { kind: 'busy'; holder: string };

export interface PruneResult {
  counts: PruneCounts;
  /** The last pass's listing and plans; absent when another host's lease stopped the run. */
  inventory?: Inventory;
  plan?: SweepPlan;
  /** What the policy condemned in the last pass (what grace 0 deletes). */
  policy?: PrunePlan;
  lease: LeaseState;
  passes: number;
  graceMs: number;
  settleMs: number;
}

export async function runPrune(deps: PruneRunDeps, opts: PruneRunOptions): Promise<PruneResult> {
  const configuredMs = opts.settings.graceHours * 3_600_000;
  if (opts.dryRun) {
    // A dry run writes nothing, not even the clock: it judges ages by this host's clock.
    const grace = await graceForPrune(deps, configuredMs, Date.now(), false);
    return { ...(await passes(deps, opts, grace)), lease: { kind: 'none', reason: 'dry run' } };
  }
  return deps.db.withLock({ pid: process.pid, host: opts.host }, async () => {
    const now = await serverNow(deps.store, deps.signal);
    const grace = await graceForPrune(deps, configuredMs, now, true);
    // Grace 0 is one host's bucket: no other prune to keep apart, so no lease either.
    if (grace.grace === 0) {
      return { ...(await passes(deps, opts, grace)), lease: { kind: 'none', reason: 'grace 0' } };
    }
    const lease = await takeLease(deps.store, opts.host, now, deps.logger);
    if (lease.kind === 'busy') {
      deps.logger.info({ holder: lease.holder }, 'another host holds the prune lease: nothing to do');
      return { counts: zeroCounts(), lease, passes: 0, graceMs: 0, settleMs: 0 };
    }
    try {
      const result = await passes(deps, opts, grace);
      return { ...result, lease: lease.kind === 'held' ? { kind: 'held' } : lease };
    } finally {
      if (lease.kind === 'held') await lease.release();
    }
  });
}

async function passes(
  deps: PruneRunDeps,
  opts: PruneRunOptions,
  { grace, settle }: GraceSetting,
): Promise<Omit<PruneResult, 'lease'>> {
  const counts = zeroCounts();
  for (let pass = 1; ; pass++) {
    const { inventory, plan, policy } = await onePass(deps, opts, { grace, settle }, counts);
    if (opts.dryRun || plan.doom.length === 0 || pass > 1 || opts.waitForDoom === false) {
      return { counts, inventory, plan, policy, passes: pass, graceMs: grace, settleMs: settle };
    }
    deps.logger.info({ settleMs: settle }, 'paths doomed: waiting to carry the doom out in its window');
    // Into the doom's window [settle, 2 settle), with room for LastModified's whole seconds.
    await sleep(settle + Math.min(settle / 4, 2000), undefined, deps.signal ? { signal: deps.signal } : {});
  }
}
