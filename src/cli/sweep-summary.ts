// What `loft --prune` prints for a bucket pruned by mark, wait, sweep (prune_grace_hours > 0):
// what this run did in each step, what the policy condemns for later runs, and that no lease
// guards the run (the protocol alone keeps the bucket safe while other hosts upload and prune).
import type { PruneResult } from '../prune/prune-run.js';

export function sweepLines(r: PruneResult, where: string, dryRun: boolean, ms: number): string[] {
  const { counts: c } = r;
  if (r.lease.kind === 'busy' || r.plan === undefined || r.inventory === undefined) {
    const holder = r.lease.kind === 'busy' ? r.lease.holder : 'another host';
    return [`prune of ${where} skipped: ${holder} holds the prune lease (.loft/lease); nothing done`];
  }
  const plan = r.plan;
  const inventory = r.inventory;
  const grace = formatDuration(r.graceMs);
  const settle = formatDuration(r.settleMs);
  if (dryRun) {
    return [
      ...plan.deleteNarinfos.map((k) => `would delete ${k} (doomed at least ${settle} ago)`),
      ...plan.deleteKeys.map(
        (k) => `would delete ${k} (announced at least ${grace} ago, named by no narinfo)`,
      ),
      ...plan.doom.map((e) => `would doom ${e.h} (marked at least ${grace} ago, unused since)`),
      ...plan.mark.map((h) => `would mark ${h} (the policy would delete it)`),
      `prune plan for ${where} (grace ${grace}, settle ${settle}; ages by this host's clock): ` +
        `would mark ${plan.mark.length} paths, doom ${plan.doom.length}, delete ` +
        `${plan.deleteNarinfos.length} narinfos and ${plan.deleteKeys.length} NARs and other objects`,
    ];
  }
  return [
    `pruned ${where} (grace ${grace}, settle ${settle}): marked ${c.marked} paths, doomed ${c.doomed}, ` +
      `deleted ${c.narinfosDeleted} narinfos and ${c.keysDeleted} NARs and other objects` +
      (c.keysAnnounced > 0 ? `, announced ${c.keysAnnounced} for deletion a grace period later` : '') +
      (c.abortedUploads > 0 ? `, aborted ${c.abortedUploads} unfinished uploads` : ''),
    'a marked path is deleted no sooner than a grace period later, and only if no narinfo uses it then; ' +
      'an upload that needs it meanwhile revives it',
    ...(c.leftOver > 0
      ? [`${c.leftOver} doomed narinfos are left for the next prune (time budget spent)`]
      : []),
    r.lease.kind === 'held'
      ? 'held the prune lease (.loft/lease): no other host pruned meanwhile'
      : `no lease (${r.lease.reason}): the mark/sweep rule alone keeps the bucket safe while other hosts upload or prune`,
    `read ${inventory.narinfosRead} narinfos over ${r.passes} passes in ${(ms / 1000).toFixed(1)} s`,
    ...(inventory.malformed > 0 ? [`${inventory.malformed} malformed narinfos were kept (see the log)`] : []),
  ];
}

function formatDuration(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms >= 60_000) return `${Math.round(ms / 6_000) / 10} min`;
  return `${Math.round(ms / 100) / 10} s`;
}
