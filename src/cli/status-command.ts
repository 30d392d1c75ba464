// `loft --status`: what the daemon's queue holds, read from the local database without touching the
// bucket or Nix, so it answers at once even when the daemon is busy or stopped.
import type { Config } from '../config/schema.js';
import { readPresenceStatus, type PresenceStatus } from '../state/presence.js';
import { UploadQueue } from '../state/queue.js';
import { ExitCode, type ExitCodeValue } from '../errors.js';
import { countOf } from './format-size.js';
import { decodeAccessLost } from '../daemon/access-state.js';
import { memoryBudgetLine } from './memory-use.js';

/** Parked paths listed in full; the rest are counted. */
const PARKED_SHOWN = 50;

export function runStatusCommand(config: Config, say: (line: string) => void): ExitCodeValue {
  const queue = UploadQueue.open(config.localCachePath);
  try {
    const presence = readPresenceStatus(config.localCachePath);
    for (const line of statusLines(queue, presence, config.localCachePath, config.scanOnStartup)) say(line);
    say(memoryBudgetLine(config.memoryBudgetBytes, queue.getState('memory_budget')));
  } finally {
    queue.close();
  }
  return ExitCode.ok;
}

/**
 * The queue's lines, then the presence table's (one file, two owners: state/queue.ts and
 * state/presence.ts). `last upload` counts the daemon's uploads and those of `--upload-path`/`--force-scan` alike.
 */
export function statusLines(
  queue: UploadQueue,
  presence: PresenceStatus,
  dbPath: string,
  scanOnStartup: boolean,
): string[] {
  const { pending, parked } = queue.counts();
  const lanes = queue.laneCounts();
  const last = Number(queue.getState('last_upload_at'));
  const lines = [
    `queued: ${countOf(pending, 'path')} waiting for upload`,
    `  of which new builds: ${lanes.new} (uploaded first); store scan backlog: ${lanes.backlog} (behind them)`,
    `parked: ${countOf(parked, 'path')} that kept failing (retried when the daemon starts)`,
  ];
  for (const p of queue.parked(PARKED_SHOWN)) {
    lines.push(`  ${p.path} (${p.attempts} attempts): ${p.lastError}`);
  }
  if (parked > PARKED_SHOWN) lines.push(`  ... and ${parked - PARKED_SHOWN} more`);
  lines.push(
    `last upload: ${Number.isFinite(last) && last > 0 ? new Date(last).toISOString() : 'never'}`,
    storageAccessLine(queue.getState('storage_access')),
    `presence cache: ${countOf(presence.paths, 'path')} known to be in the cache (${dbPath})`,
    `initial scan: ${initialScan(presence.initialScanComplete, scanOnStartup)}`,
  );
  return lines;
}

function initialScan(done: boolean, enabled: boolean): string {
  if (done) return 'done';
  return enabled ? 'not done yet' : 'off (scan_on_startup = false)';
}

/** What the daemon last saw of the object store (src/daemon/access-state.ts). */
function storageAccessLine(record: string | undefined): string {
  const lost = decodeAccessLost(record);
  if (lost === undefined) return 'storage access: ok';
  return (
    `storage access: LOST since ${new Date(lost.since).toISOString()} (${lost.code}): ${lost.message}; ` +
    'uploads are paused, the queue is kept, and the daemon resumes by itself once access returns'
  );
}
