// The grace period belongs to the bucket, not to a host's config (issue 22): hosts sharing a bucket
// rarely agree on prune_grace_hours, and mark, wait, sweep is only safe when no uploader trusts its
// presence memory for longer than prunes wait. So the first prune records its grace in
// `.loft/grace.json` (src/format/loft-state.ts), every later prune follows the record whatever its
// own setting says (and says so in one line), and uploaders read it with the state objects
// (src/upload/prune-guard.ts). Only `loft --set-bucket-grace` changes it, and the change waits
// until the grace in force has passed. A bucket without the record (an older loft, the original
// Loft) is pruned as before: with this host's own grace.
import {
  graceSetting,
  newBucketGrace,
  pruneGraceOf,
  PRUNE_PROTOCOL,
  settledGrace,
  withGraceChange,
  type BucketGrace,
  type GraceSetting,
} from '../format/loft-state.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import { readStates, writeBucketGrace, type GraceRecord } from '../storage/loft-state-store.js';
import type { ObjectStore } from '../storage/object-store.js';

export interface BucketGraceDeps {
  store: ObjectStore;
  logger: Logger;
  signal?: AbortSignal;
}

const HOUR_MS = 3_600_000;

/**
 * The grace a prune follows at server time `now`. Without a record, a prune with a grace records
 * it (and follows what it reads back: another host's first prune may have won the race); a prune
 * with grace 0 (one host, deleting at once) records nothing.
 */
export async function graceForPrune(
  deps: BucketGraceDeps,
  configuredMs: number,
  now: number,
  write: boolean,
): Promise<GraceSetting> {
  let record = usable(await readGrace(deps));
  if (record === undefined && configuredMs > 0 && write) {
    await writeBucketGrace(deps, newBucketGrace(configuredMs));
    record = usable(await readGrace(deps));
  }
  if (record === undefined) return graceSetting(configuredMs);
  const settled = settledGrace(record, now);
  if (write && settled !== record) {
    deps.logger.info({ graceMs: settled.grace }, "the bucket's grace change has taken effect");
    await writeBucketGrace(deps, settled);
  }
  const chosen = pruneGraceOf(record, now);
  if (chosen.grace !== configuredMs) {
    deps.logger.warn(
      `prune_grace_hours here is ${hours(configuredMs)}, the bucket's grace is ${hours(chosen.grace)} ` +
        `(.loft/grace.json): following the bucket's`,
    );
  }
  return chosen;
}

export interface GraceChange {
  before?: BucketGrace;
  after: BucketGrace;
}

/**
 * `loft --set-bucket-grace`: records a change of the bucket's grace, effective once the grace in
 * force at `now` (the server's time; a dry run passes this host's) has passed. A bucket without a
 * record gets one at once: there is no bucket grace anybody relied on.
 */
export async function changeBucketGrace(
  deps: BucketGraceDeps,
  graceMs: number,
  now: number,
  dryRun: boolean,
): Promise<GraceChange> {
  const before = usable(await readGrace(deps));
  const after = before ? withGraceChange(before, graceMs, now) : newBucketGrace(graceMs);
  if (!dryRun) await writeBucketGrace(deps, after);
  return { ...(before ? { before } : {}), after };
}

async function readGrace(deps: BucketGraceDeps): Promise<GraceRecord | undefined> {
  return (await readStates(deps)).grace;
}

/** A record this loft can follow; a bad or newer one stops the prune with one line. */
function usable(found: GraceRecord | undefined): BucketGrace | undefined {
  if (found === undefined) return undefined;
  if (found.record === undefined) {
    throw new ConfigError(
      "the bucket's grace record .loft/grace.json cannot be read; `loft --set-bucket-grace HOURS` writes a new one",
    );
  }
  if (found.record.protocol > PRUNE_PROTOCOL) {
    throw new ConfigError(
      `the bucket follows prune protocol ${found.record.protocol}, newer than this loft's ` +
        `(${PRUNE_PROTOCOL}): upgrade loft on this host before it prunes`,
    );
  }
  return found.record;
}

export function hours(ms: number): string {
  return `${Math.round((ms / HOUR_MS) * 1000) / 1000} h`;
}
