// `loft --wait [--timeout SECS]`: blocks until the daemon has dealt with everything that was in its
// queue when this command started, for the last step of a CI job on a runner whose builds reach the
// daemon (a post-build hook with --enqueue, or the daemon's store watcher). Like --status it reads
// only the local database: no bucket, no Nix, no secret.
//
// "Dealt with" means uploaded (or found present, or gone from the store: the row is deleted) or
// parked (given up on after repeated failures). Paths queued after the start are not waited for,
// so a daemon that keeps busy with other jobs' builds cannot hold this one up; nor is the backlog
// of the daemon's initial scan of the store, which the job's builds go ahead of (state/queue.ts's
// lanes) and which can take hours on a large store.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/schema.js';
import { UploadQueue, type QueueCounts } from '../state/queue.js';
import { ExitCode, type ExitCodeValue } from '../errors.js';

export interface WaitIo {
  say: (line: string) => void;
  /** Why the wait did not end well: one `loft:` line on stderr. */
  warn: (line: string) => void;
}

export interface WaitOptions {
  /** 0 waits for ever. */
  timeoutSecs: number;
  /** How often the queue is looked at (default 250 ms). */
  pollMs?: number;
  now?: () => number;
}

export async function runWaitCommand(config: Config, opts: WaitOptions, io: WaitIo): Promise<ExitCodeValue> {
  const now = opts.now ?? Date.now;
  const started = now();
  const deadline = opts.timeoutSecs > 0 ? started + opts.timeoutSecs * 1000 : Infinity;
  const queue = UploadQueue.open(config.localCachePath);
  try {
    let counts = queue.countsQueuedBy(started, 'new');
    if (counts.pending > 0) io.say(`waiting for ${counts.pending} queued paths to be uploaded`);
    while (counts.pending > 0 && now() < deadline) {
      await sleep(Math.min(opts.pollMs ?? 250, Math.max(0, deadline - now())));
      counts = queue.countsQueuedBy(started, 'new');
    }
    const code = verdict(counts, opts.timeoutSecs, io);
    const backlog = queue.countsQueuedBy(started, 'backlog').pending;
    if (backlog > 0) io.say(`${backlog} paths of the daemon's store scan still wait behind; not waited for`);
    return code;
  } finally {
    queue.close();
  }
}

function verdict(counts: QueueCounts, timeoutSecs: number, io: WaitIo): ExitCodeValue {
  if (counts.pending > 0) {
    io.warn(
      `loft: timed out after ${timeoutSecs} s: ${counts.pending} paths queued before the wait are still waiting ` +
        `(is the daemon running? see loft --status)`,
    );
    return ExitCode.timeout;
  }
  if (counts.parked > 0) {
    io.warn(`loft: ${counts.parked} queued paths were parked after repeated failures (see loft --status)`);
    return ExitCode.partial;
  }
  io.say('the daemon has uploaded everything queued before the wait');
  return ExitCode.ok;
}
