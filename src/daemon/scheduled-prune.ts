// What the daemon's prune timer runs (loft.prune_schedule): the same prune as `loft --prune`
// (prune/prune-run.ts), and its outcome kept for the metrics.
// The CLI opens the database and hands everything in, so this file knows no config and no process.
import { runPrune, type PruneRunDeps, type PruneSettings } from '../prune/prune-run.js';
import { parsePruneSchedule, type PruneSchedule } from '../prune/schedule-syntax.js';
import type { Logger } from '../log.js';
import type { DaemonMetrics } from './metrics.js';
import type { ScheduledPrune } from './prune-loop.js';

/** The schedule to prune on, or undefined when the daemon must not prune by itself. */
export function pruneScheduleOf(p: {
  enabled: boolean;
  schedule?: string | undefined;
}): PruneSchedule | undefined {
  return p.enabled && p.schedule !== undefined ? parsePruneSchedule(p.schedule) : undefined;
}

export interface ScheduledPruneDeps {
  /** What the prune itself reads and writes (its logger has component "prune"). */
  prune: PruneRunDeps;
  metrics: DaemonMetrics;
  /** The name this host's sweep marks and leases carry. */
  host: string;
  /** Where "scheduled prune finished" goes: the daemon's root logger, as `loft --prune` has none. */
  logger: Logger;
}

export function scheduledPrune(
  schedule: PruneSchedule,
  settings: PruneSettings,
  deps: ScheduledPruneDeps,
): ScheduledPrune {
  const { metrics } = deps;
  const run = async () => {
    let deleted: number;
    try {
      deleted = await pruneOnce(deps, settings);
    } catch (err) {
      metrics.lastPrune = { at: Date.now(), ok: false, deletedPaths: 0 };
      throw err;
    }
    metrics.lastPrune = { at: Date.now(), ok: true, deletedPaths: deleted };
  };
  return { schedule, run };
}

/** One prune; the number of paths (narinfos) it deleted. */
async function pruneOnce(deps: ScheduledPruneDeps, settings: PruneSettings): Promise<number> {
  const { counts, lease } = await runPrune(deps.prune, { settings, dryRun: false, host: deps.host });
  deps.logger.info({ ...counts, lease: lease.kind }, 'scheduled prune finished');
  return counts.narinfosDeleted;
}
