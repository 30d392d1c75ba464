// The syntax of `loft.prune_schedule`. The original Loft documents both "24h" (an interval) and
// "00:00" (a daily time, used in its NixOS module example) but only parses the interval form, so the
// documented daily example fails at startup there. loft accepts both:
//   <n>s | <n>m | <n>h | <n>d   with n >= 1, at most 365 days in total -> run every interval
//   HH:MM                       00:00 to 23:59, local time              -> run once a day at that time
// Pure: the scheduler turns a PruneSchedule into timers.

export type PruneSchedule =
  { kind: 'interval'; ms: number } | { kind: 'daily'; hour: number; minute: number };

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MAX_INTERVAL_MS = 365 * UNIT_MS.d;

export const PRUNE_SCHEDULE_SYNTAX =
  'an interval like "24h" (<n>s, <n>m, <n>h or <n>d, at most 365d) or a daily time "HH:MM" (00:00 to 23:59)';

/** The schedule, or undefined when `text` is not valid (callers word the error). */
export function parsePruneSchedule(text: string): PruneSchedule | undefined {
  const interval = /^([0-9]{1,9})([smhd])$/.exec(text);
  if (interval) {
    const unit = interval[2] as keyof typeof UNIT_MS;
    const ms = Number(interval[1]) * UNIT_MS[unit];
    return ms >= 1000 && ms <= MAX_INTERVAL_MS ? { kind: 'interval', ms } : undefined;
  }
  const daily = /^([0-9]{2}):([0-9]{2})$/.exec(text);
  if (daily) {
    const hour = Number(daily[1]);
    const minute = Number(daily[2]);
    return hour <= 23 && minute <= 59 ? { kind: 'daily', hour, minute } : undefined;
  }
  return undefined;
}
