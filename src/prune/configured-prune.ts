// Which prune runs, decided in one place for `loft --prune` and the daemon's timer: with a grace
// period (loft.prune_grace_hours > 0) the mark-and-sweep that several hosts can share
// (sweep-run.ts), with none the single-pass prune that deletes at once (prune-run.ts).
import { runPruneOnce, type PruneResult, type PruneRunDeps } from './prune-run.js';
import { runSweepOnce, type SweepResult, type SweepSettings } from './sweep-run.js';

export type PruneOutcome = { kind: 'sweep'; sweep: SweepResult } | { kind: 'single'; result: PruneResult };

export interface ConfiguredPruneOptions {
  settings: SweepSettings;
  dryRun: boolean;
  /** The name this host's marks and lease carry (sweep only). */
  host: string;
  /** The clock the single-pass policy sees; default now. The sweep uses the server's clock. */
  now?: Date;
}

export async function runConfiguredPrune(
  deps: PruneRunDeps,
  opts: ConfiguredPruneOptions,
): Promise<PruneOutcome> {
  const { settings, dryRun } = opts;
  if (settings.graceHours > 0) {
    return { kind: 'sweep', sweep: await runSweepOnce(deps, { settings, dryRun, host: opts.host }) };
  }
  return {
    kind: 'single',
    result: await runPruneOnce(deps, { settings, dryRun, now: opts.now ?? new Date() }),
  };
}
