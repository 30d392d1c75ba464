// When the daemon prunes next: pure arithmetic over a parsed `loft.prune_schedule` and `now`; the
// timer loop that sleeps until then lives in the daemon.
//  - interval "24h": the first run one interval after the daemon starts (a start is not a reason
//    to prune), then one interval after the previous run STARTED, so runs do not drift by their
//    own duration. A run that overran its slot is followed at once, never twice in a row.
//  - daily "03:30": the next local wall-clock 03:30 strictly after `now`. On a day when 03:30 does
//    not exist (a DST jump), JavaScript's Date rolls forward to the first instant after the gap.
import type { PruneSchedule } from './schedule-syntax.js';

/**
 * @param lastStart when the previous run started; undefined before the first run.
 * @returns when the next run should start (never before `now`).
 */
export function nextPruneAt(schedule: PruneSchedule, now: Date, lastStart?: Date): Date {
  if (schedule.kind === 'interval') {
    const base = lastStart ?? now;
    return new Date(Math.max(base.getTime() + schedule.ms, now.getTime()));
  }
  const next = new Date(now.getTime());
  next.setHours(schedule.hour, schedule.minute, 0, 0);
  if (next.getTime() <= now.getTime()) {
    // Tomorrow's date first, then the time: adding 24 h would be off by one hour across DST.
    next.setDate(next.getDate() + 1);
    next.setHours(schedule.hour, schedule.minute, 0, 0);
  }
  return next;
}

/** Milliseconds from `now` until the next run, for a timer. */
export function msUntilNextPrune(schedule: PruneSchedule, now: Date, lastStart?: Date): number {
  return nextPruneAt(schedule, now, lastStart).getTime() - now.getTime();
}
