// `loft --prune [--dry-run]`: runs the configured prune policy once and prints what it deleted (or,
// with --dry-run, every key it would delete). Refuses when pruning is disabled: the original Loft
// prunes anyway, which deletes objects from a bucket whose owner turned pruning off.
import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import { ConfigError, ExitCode, type ExitCodeValue } from '../errors.js';
import type { PrunePlan } from '../prune/policy.js';
import {
  runPrune as runPruneWithGrace,
  type PruneResult,
  type PruneRunDeps,
  type PruneSettings,
} from '../prune/prune-run.js';
import { formatBytes } from './format-size.js';
import { sweepLines } from './sweep-summary.js';
import type { Runtime } from './runtime.js';

export interface PruneCommandOptions {
  dryRun: boolean;
}

/** Checked before the bucket is contacted: a disabled prune needs no credentials to be refused. */
export function assertPruneEnabled(config: Config): void {
  if (!config.prune.enabled) {
    throw new ConfigError('pruning is disabled (loft.prune_enabled = false); set it to true to prune');
  }
}

export async function runPrune(
  rt: Runtime,
  opts: PruneCommandOptions,
  say: (line: string) => void,
): Promise<ExitCodeValue> {
  assertPruneEnabled(rt.config);
  const started = Date.now();
  const result = await runPruneWithGrace(pruneDeps(rt), {
    dryRun: opts.dryRun,
    host: hostname(),
    settings: pruneSettings(rt.config.prune),
  });
  const ms = Date.now() - started;
  // Grace 0 (a bucket without a grace record, pruned by a host that deletes at once) reports
  // what the policy deleted, as loft always did; a sweep reports its steps.
  if (result.graceMs > 0 || result.policy === undefined) {
    for (const line of sweepLines(result, rt.store.description, opts.dryRun, ms)) say(line);
    return ExitCode.ok;
  }
  if (opts.dryRun) for (const line of dryRunLines(result.policy)) say(line);
  for (const line of summaryLines(result, result.policy, rt.store.description, opts.dryRun, ms)) say(line);
  return ExitCode.ok;
}

/** What a prune reads and writes; the daemon's timer prunes with the same. */
export function pruneDeps(rt: Runtime): PruneRunDeps {
  return {
    store: rt.store,
    db: rt.pruneDb(),
    cache: rt.cache,
    storeDir: rt.config.storeDir,
    logger: rt.logger.child({ component: 'prune' }),
  };
}

export function pruneSettings(p: Config['prune']): PruneSettings {
  return {
    retentionDays: p.retentionDays,
    targetPercentage: p.targetPercentage,
    orphanGraceHours: p.orphanGraceHours,
    graceHours: p.graceHours,
    ...(p.maxSizeGb !== undefined ? { maxSizeGb: p.maxSizeGb } : {}),
  };
}

function dryRunLines(plan: PrunePlan): string[] {
  const lines: string[] = [];
  for (const p of plan.paths) {
    const why = p.reason === 'size' ? 'over the size cap' : p.reason === 'broken' ? 'NAR missing' : 'expired';
    const uploaded = new Date(p.uploadedAt).toISOString();
    lines.push(`would delete ${p.hashPart}.narinfo (${why}, uploaded ${uploaded}, ${formatBytes(p.bytes)})`);
  }
  for (const k of plan.dataKeys) lines.push(`would delete ${k}`);
  for (const u of plan.abortUploads) lines.push(`would abort the unfinished upload of ${u.key}`);
  return lines;
}

export function summaryLines(
  result: PruneResult,
  plan: PrunePlan,
  where: string,
  dryRun: boolean,
  ms: number,
): string[] {
  const count = (r: string) => plan.paths.filter((p) => p.reason === r).length;
  const verb = dryRun ? 'would delete' : 'deleted';
  const { counts } = result;
  const kept = (result.inventory?.paths.length ?? 0) - plan.paths.length;
  const lines = [
    `${dryRun ? 'prune plan for' : 'pruned'} ${where}: ${verb} ${plan.paths.length} paths ` +
      `(${formatBytes(plan.pathBytes)}: ${count('expired')} expired, ${count('size')} over the size cap, ` +
      `${count('broken')} with a missing NAR) and ${plan.orphans.length} orphan NARs (${formatBytes(plan.orphanBytes)})` +
      (plan.abortUploads.length > 0
        ? `, ${dryRun ? 'would abort' : 'aborted'} ${plan.abortUploads.length} unfinished uploads`
        : ''),
    `kept ${kept} paths, ${plan.keptBecauseReferenced.length} of them ` +
      `expired but referenced by kept paths; bucket ${formatBytes(plan.sizeBefore)} -> ${formatBytes(plan.sizeAfter)}` +
      (plan.sizeTarget !== undefined ? ` (size target ${formatBytes(plan.sizeTarget)})` : ''),
    `read ${counts.narinfosRead} narinfos, ${counts.listPages} listing pages` +
      (dryRun ? '' : `, ${counts.deleteRequests} delete requests`) +
      ` in ${(ms / 1000).toFixed(1)} s`,
  ];
  if (!plan.targetMet) {
    lines.push('the size target is not met: everything left is recent, referenced, or unreadable');
  }
  if ((result.inventory?.malformed ?? 0) > 0) {
    lines.push(`${result.inventory?.malformed} malformed narinfos were kept (see the log)`);
  }
  return lines;
}
