// `loft --status`: what the daemon's queue holds, read from the local database without touching the
// bucket or Nix, so it answers at once even when the daemon is busy or stopped.
import type { Config } from '../config/schema.js';
import { UploadQueue } from '../daemon/upload-queue.js';
import { ExitCode, type ExitCodeValue } from '../errors.js';

/** Parked paths listed in full; the rest are counted. */
const PARKED_SHOWN = 50;

export function runStatusCommand(config: Config, say: (line: string) => void): ExitCodeValue {
  const queue = UploadQueue.open(config.localCachePath);
  try {
    for (const line of statusLines(queue, config.localCachePath)) say(line);
  } finally {
    queue.close();
  }
  return ExitCode.ok;
}

export function statusLines(queue: UploadQueue, dbPath: string): string[] {
  const { pending, parked } = queue.counts();
  const last = Number(queue.getState('last_upload_at'));
  const lines = [
    `queued: ${pending} paths waiting for upload`,
    `parked: ${parked} paths that kept failing (retried when the daemon starts)`,
  ];
  for (const p of queue.parked(PARKED_SHOWN)) {
    lines.push(`  ${p.path} (${p.attempts} attempts): ${p.lastError}`);
  }
  if (parked > PARKED_SHOWN) lines.push(`  ... and ${parked - PARKED_SHOWN} more`);
  lines.push(
    `last upload: ${Number.isFinite(last) && last > 0 ? new Date(last).toISOString() : 'never'}`,
    `presence cache: ${queue.presenceCount()} paths known to be in the cache (${dbPath})`,
    `initial scan: ${queue.presenceFlag('initial_scan_complete') ? 'done' : 'not done yet'}`,
  );
  return lines;
}
