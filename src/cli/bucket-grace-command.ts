// `loft --set-bucket-grace HOURS [--dry-run]`: changes the grace period every host of the bucket
// follows (.loft/grace.json; src/prune/bucket-grace.ts). The change waits until the grace in force
// has passed; the command says when that is. It needs no prune_enabled: it deletes nothing.
import { ExitCode, type ExitCodeValue } from '../errors.js';
import type { BucketGrace } from '../format/loft-state.js';
import { changeBucketGrace, hours } from '../prune/bucket-grace.js';
import { serverNow } from '../prune/sweep-pass.js';
import type { Runtime } from './runtime.js';

export async function runSetBucketGrace(
  rt: Runtime,
  graceHours: number,
  dryRun: boolean,
  say: (line: string) => void,
): Promise<ExitCodeValue> {
  const deps = { store: rt.store, logger: rt.logger.child({ component: 'prune' }) };
  // The server's clock decides when a change takes effect; a dry run writes nothing, not even it.
  const now = dryRun ? Date.now() : await serverNow(rt.store);
  const { before, after } = await changeBucketGrace(deps, Math.round(graceHours * 3_600_000), now, dryRun);
  const where = rt.store.description;
  const verb = dryRun ? 'would be' : 'is';
  say(`${where}: bucket grace was ${before ? describe(before) : 'not recorded (each host used its own)'}`);
  say(`${where}: bucket grace ${verb} now ${describe(after)}`);
  return ExitCode.ok;
}

function describe(b: BucketGrace): string {
  const pending = b.pending
    ? `, changing to ${hours(b.pending.grace)} at ${new Date(b.pending.from).toISOString()}`
    : '';
  return `${hours(b.grace)}${pending}`;
}
