// `loft doctor`: probes the configured target and prints one line per check, with what to do when
// one fails; exit 0 when loft can work with the target (warnings allowed), 1 otherwise. `--json`
// prints the same as one JSON object for scripts. The checks live in storage/ (s3-probe.ts for S3,
// store-probe.ts for what any store offers); this file only opens, runs and reports.
import type { Config } from '../config/schema.js';
import { ExitCode } from '../errors.js';
import { openObjectStore, s3StoreOptions } from '../storage/open-store.js';
import { silentLogger } from '../log.js';
import {
  checkCacheInfo,
  checkConditionalCreate,
  checkReadWrite,
  newProbeRun,
  type CheckResult,
} from '../storage/store-probe.js';
import { describeS3Target } from '../storage/s3-description.js';

const LABELS: Record<CheckResult['status'], string> = {
  ok: 'ok  ',
  warn: 'WARN',
  fail: 'FAIL',
  skip: 'skip',
};

export async function runDoctor(
  config: Config,
  opts: { json: boolean },
  say: (line: string) => void,
): Promise<number> {
  const { target, checks } = await probe(config);
  const failed = checks.filter((c) => c.status === 'fail');
  const warned = checks.filter((c) => c.status === 'warn');
  const wrote = checks.flatMap((c) => c.wrote ?? []);
  const leftBehind = checks.flatMap((c) => c.leftBehind ?? []);
  if (opts.json) {
    say(JSON.stringify({ target, canWork: failed.length === 0, checks, wrote, leftBehind }));
  } else {
    for (const c of checks) say(line(c));
    if (wrote.length > 0) say(`wrote and deleted again: ${wrote.join(', ')}`);
    if (leftBehind.length > 0) say(`could not delete: ${leftBehind.join(', ')}`);
    say(
      failed.length === 0
        ? `loft can work with ${target}${warned.length > 0 ? ` (${warned.length} warning${warned.length > 1 ? 's' : ''})` : ''}`
        : `loft cannot work with ${target}: ${failed.map((c) => c.id).join(', ')} failed`,
    );
  }
  return failed.length === 0 ? ExitCode.ok : 1;
}

function line(c: CheckResult): string {
  const fix = c.fix !== undefined && (c.status === 'fail' || c.status === 'warn') ? ` -> ${c.fix}` : '';
  return `${LABELS[c.status]}  ${c.id.padEnd(18)} ${c.detail}${fix}`;
}

async function probe(config: Config): Promise<{ target: string; checks: CheckResult[] }> {
  const storage = config.storage;
  if (storage.kind === 's3') {
    const s3 = storage.s3;
    // Loaded on first use, like every S3 path: the SDK costs start-up time.
    const { probeS3 } = await import('../storage/s3-probe.js');
    return {
      target: describeS3Target(s3.bucket, s3.prefix ?? '', s3.endpoint, s3.region),
      checks: await probeS3(s3StoreOptions(s3, undefined)),
    };
  }
  // A directory or an HTTP cache: the subset that means something there (no bucket or multipart).
  const store = openObjectStore(storage, silentLogger());
  const run = newProbeRun();
  try {
    const checks = [
      await checkReadWrite(store, run),
      await checkConditionalCreate(store, run),
      await checkCacheInfo(store),
    ];
    return { target: store.description, checks };
  } finally {
    await store.close();
  }
}
