// What one invocation of loft does, decided once from the parsed flags: exactly one Action (the
// daemon when no action flag is given), plus the options every action shares. main.ts switches
// on `action.kind`; nothing after parsing looks at a flag again. A new command adds a variant
// here, its flag to ACTION_FLAGS, and a case in main.ts.
import { UsageError } from '../errors.js';

/** --clear-cache and --reset-initial-scan: presence-cache chores run before an action, or alone. */
export interface CacheMaintenance {
  clearCache: boolean;
  resetInitialScan: boolean;
  dryRun: boolean;
}

export type Action =
  /** No action flag: the store-watching daemon. */
  | { kind: 'daemon' }
  /** --enqueue: paths for the daemon's queue ("-" = stdin; none: $OUT_PATHS, else $DRV_PATH's outputs). */
  | { kind: 'enqueue'; paths: string[] }
  | { kind: 'upload'; paths: string[]; dryRun: boolean }
  | { kind: 'force-scan'; dryRun: boolean }
  | { kind: 'populate-cache'; dryRun: boolean }
  | { kind: 'prune'; dryRun: boolean }
  /** --set-bucket-grace HOURS: change the grace every host of the bucket follows (docs/multi-host.md). */
  | { kind: 'set-bucket-grace'; hours: number; dryRun: boolean }
  | { kind: 'status' }
  /** --wait: until the daemon's queue holds nothing enqueued before this start (0 s = no limit). */
  | { kind: 'wait'; timeoutSecs: number }
  /** --watch-exec: the command (argv after `--`) to run while watching the store. */
  | { kind: 'watch-exec'; command: string[] }
  /** `loft verify` or `loft --verify`: check the cache and report every broken invariant. */
  | {
      kind: 'verify';
      /** `loft verify PATH...`: only these paths' closures, found without listing the cache. */
      paths: string[];
      checkContents: boolean;
      repair: boolean;
      deleteUnrepairable: boolean;
      dryRun: boolean;
    }
  /** `loft doctor` or `loft --doctor`: probe the target, one line per check (or one JSON object). */
  | { kind: 'doctor'; json: boolean }
  /** Only --clear-cache and/or --reset-initial-scan. */
  | { kind: 'cache-maintenance' };

export type ActionKind = Action['kind'];

export interface Cli {
  config: string;
  /** -c/--config was given (a missing file is then an error, not the embedded default). */
  configExplicit: boolean;
  debug: boolean;
  action: Action;
  /** Run before the action, when either flag was given (only with actions that open the cache). */
  maintenance?: CacheMaintenance;
}

/** The flags commander parsed, as plain values (program.ts). */
export interface ParsedFlags {
  dryRun: boolean;
  uploadPath: string[] | undefined;
  forceScan: boolean;
  populateCache: boolean;
  prune: boolean;
  /** --set-bucket-grace's hours; undefined when not given. */
  setBucketGrace: number | undefined;
  /** --enqueue's paths ([] for --enqueue alone); undefined when not given. */
  enqueue: string[] | undefined;
  status: boolean;
  wait: boolean;
  timeoutSecs: number;
  /** --watch-exec's command; undefined when not given. */
  watchExec: string[] | undefined;
  verify: boolean;
  /** verify's store paths (empty: the whole cache). */
  verifyPaths: string[];
  checkContents: boolean;
  repair: boolean;
  deleteUnrepairable: boolean;
  doctor: boolean;
  json: boolean;
  clearCache: boolean;
  resetInitialScan: boolean;
}

/** Each action flag, in the order `--help` lists them, and the action it asks for when given. */
const ACTION_FLAGS: ReadonlyArray<readonly [string, (f: ParsedFlags) => Action | undefined]> = [
  ['--upload-path', (f) => f.uploadPath && { kind: 'upload', paths: f.uploadPath, dryRun: f.dryRun }],
  ['--force-scan', (f) => (f.forceScan ? { kind: 'force-scan', dryRun: f.dryRun } : undefined)],
  ['--populate-cache', (f) => (f.populateCache ? { kind: 'populate-cache', dryRun: f.dryRun } : undefined)],
  ['--prune', (f) => (f.prune ? { kind: 'prune', dryRun: f.dryRun } : undefined)],
  [
    '--set-bucket-grace',
    (f) =>
      f.setBucketGrace === undefined
        ? undefined
        : { kind: 'set-bucket-grace', hours: f.setBucketGrace, dryRun: f.dryRun },
  ],
  ['--status', (f) => (f.status ? { kind: 'status' } : undefined)],
  ['--wait', (f) => (f.wait ? { kind: 'wait', timeoutSecs: f.timeoutSecs } : undefined)],
  ['--watch-exec', (f) => f.watchExec && { kind: 'watch-exec', command: f.watchExec }],
  ['verify', (f) => (f.verify ? verifyAction(f) : undefined)],
  ['doctor', (f) => (f.doctor ? { kind: 'doctor', json: f.json } : undefined)],
];

/** Actions that open the presence cache, and so may run the maintenance flags first. */
const OPENS_CACHE: ReadonlySet<ActionKind> = new Set([
  'upload',
  'force-scan',
  'populate-cache',
  'prune',
  'set-bucket-grace',
  'verify',
  'cache-maintenance',
]);

/** The one action the flags ask for; a UsageError when they ask for two or mix what does not go. */
export function actionOf(f: ParsedFlags): Pick<Cli, 'action' | 'maintenance'> {
  // Before anything that could fail: a post-build hook must never fail a build (main.ts).
  if (f.enqueue !== undefined) return { action: { kind: 'enqueue', paths: f.enqueue } };
  const given = ACTION_FLAGS.flatMap(([, ask]) => ask(f) ?? []);
  if (given.length > 1) throw new UsageError(`give one of ${ACTION_FLAGS.map(([flag]) => flag).join(', ')}`);
  const chores = f.clearCache || f.resetInitialScan;
  const action: Action = given[0] ?? (chores ? { kind: 'cache-maintenance' } : { kind: 'daemon' });
  if (f.dryRun && action.kind === 'daemon') {
    throw new UsageError('--dry-run needs an action such as --upload-path; the daemon always uploads');
  }
  if (f.dryRun && action.kind === 'watch-exec') {
    throw new UsageError('--dry-run does not go with --watch-exec, which always uploads');
  }
  if (!chores) return { action };
  if (!OPENS_CACHE.has(action.kind)) {
    throw new UsageError(
      '--clear-cache and --reset-initial-scan go alone or with a one-off command, not --status, --wait or --watch-exec',
    );
  }
  const maintenance = { clearCache: f.clearCache, resetInitialScan: f.resetInitialScan, dryRun: f.dryRun };
  return { action, maintenance };
}

function verifyAction(f: ParsedFlags): Action {
  const { checkContents, repair, deleteUnrepairable, dryRun } = f;
  return { kind: 'verify', paths: f.verifyPaths, checkContents, repair, deleteUnrepairable, dryRun };
}
