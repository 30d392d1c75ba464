// The daemon's first look at the object store, before it watches anything. A definite refusal (no
// such bucket, access denied, not S3, TLS spoken to a plain-http port) cannot fix itself: it is
// thrown, so the process exits 4 and systemd shows a failed unit instead of a daemon that retries
// forever. A transient failure (connection refused, a timeout, 5xx) is waited out with backoff, one
// log line per attempt, since an endpoint that restarts with the machine is common.
import { setTimeout as sleep } from 'node:timers/promises';
import { BACKOFF, backoffDelay, type Backoff } from '../backoff.js';
import { StorageError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * Resolves true once `probe` succeeds, false if `stop` is aborted while waiting; rejects with the
 * probe's error when it is not a transient StorageError.
 */
export async function waitForStorage(
  probe: () => Promise<unknown>,
  logger: Logger,
  stop: AbortSignal,
  policy: Partial<Backoff> = {},
): Promise<boolean> {
  for (let failures = 1; !stop.aborted; failures++) {
    try {
      await probe();
      if (failures > 1) logger.info('object store reachable');
      return true;
    } catch (err) {
      if (stop.aborted) return false;
      if (!(err instanceof StorageError && err.transient)) throw err;
      const delayMs = backoffDelay({ ...BACKOFF.storageWait, ...policy }, failures);
      logger.warn({ err, delayMs }, 'object store not reachable yet; trying again');
      try {
        await sleep(delayMs, undefined, { signal: stop });
      } catch {
        return false;
      }
    }
  }
  return false;
}
