// The daemon's prune timer: sleeps until loft.prune_schedule says, then prunes while the upload
// worker holds off (UploadWorker.exclusive), so a prune never races the daemon's own uploads, and
// never two at once (one loop; the prune itself also takes a lock in the database against other
// processes). When to run is pure arithmetic in src/prune/schedule.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import type { PruneSchedule } from '../prune/schedule-syntax.js';
import type { Logger } from '../log.js';
import { msUntilNextPrune } from '../prune/schedule.js';

export interface ScheduledPrune {
  schedule: PruneSchedule;
  /** One prune of the bucket with the configured policy. */
  run: () => Promise<void>;
}

export interface ExclusiveRunner {
  exclusive<T>(job: () => Promise<T>): Promise<T>;
}

/** Node timers overflow past about 24.8 days: long waits are taken in steps and re-computed. */
const MAX_SLEEP_MS = 60 * 60_000;

export function startPruneLoop(
  prune: ScheduledPrune,
  worker: ExclusiveRunner,
  logger: Logger,
  now: () => Date = () => new Date(),
): { stop(): Promise<void> } {
  const stopped = new AbortController();
  const loop = (async () => {
    let lastStart: Date | undefined;
    while (!stopped.signal.aborted) {
      const wait = msUntilNextPrune(prune.schedule, now(), lastStart);
      if (wait > 0) {
        try {
          await sleep(Math.min(wait, MAX_SLEEP_MS), undefined, { signal: stopped.signal });
        } catch {
          break; // stopped
        }
        if (wait > MAX_SLEEP_MS) continue;
      }
      lastStart = now();
      try {
        logger.info('scheduled prune starting');
        await worker.exclusive(prune.run);
      } catch (err) {
        // A failed prune (bucket unreachable, another host's prune holding the lock) is tried again
        // at the next scheduled time; the daemon's uploads go on.
        logger.error({ err }, 'scheduled prune failed');
      }
    }
  })();
  return {
    async stop() {
      stopped.abort();
      await loop;
    },
  };
}
