// The command line, compatible with the original Loft's flags, plus loft's own (--dry-run, stdin
// paths). Parsing only: no file, network or Nix access here.
import { Command, CommanderError, Option } from 'commander';
import { UsageError } from '../errors.js';
import { actionOf, type Cli } from './action.js';

/** --wait gives up after this long unless --timeout says otherwise (see README, Command line). */
export const DEFAULT_WAIT_TIMEOUT_SECS = 600;

export function buildProgram(version: string): Command {
  return (
    new Command('loft')
      .description('Upload Nix store paths and their closures to an S3 (or local) binary cache, signed.')
      .version(version, '-V, --version', 'print the version')
      .helpOption('-h, --help', 'print help')
      .addOption(new Option('-c, --config <path>', 'configuration file').default('loft.toml'))
      .option('--debug', 'enable debug logging')
      .option('--dry-run', 'show what would be uploaded or changed, and change nothing')
      .option(
        '--upload-path <path...>',
        'upload these store paths and their missing closure, then exit ("-" reads paths from stdin, one per line)',
      )
      .option('--clear-cache', 'clear the local presence cache')
      .option('--reset-initial-scan', 'forget that the initial scan ran, so the next start scans again')
      .option(
        '--force-scan',
        'check every valid store path against the bucket (ignoring the local cache), upload what is missing, exit',
      )
      .option('--populate-cache', 'fill the local presence cache from the bucket, then exit')
      .option(
        '--prune',
        'delete expired paths (whole closures, never a dependency of a kept path) and old orphan NARs per the loft.prune_* settings once, then exit; with --dry-run, list what would go',
      )
      .option(
        '--set-bucket-grace <hours>',
        'change the prune grace period every host of the bucket follows (.loft/grace.json), effective once the current one has passed, then exit; with --dry-run, show the change',
      )
      .option(
        '--enqueue [path...]',
        'add store paths to the daemon\'s upload queue and exit 0 at once, whatever happens (for Nix\'s post-build-hook; "-" reads stdin; no paths: $OUT_PATHS, else the outputs of $DRV_PATH)',
      )
      .option(
        '--status',
        "print the daemon's queue, parked failures, last upload and presence cache size, then exit",
      )
      .option(
        '--wait',
        "wait until the daemon's queue holds no new build queued before this start (the initial scan's backlog is not waited for), then exit (1 if some were parked)",
      )
      .option(
        '--timeout <secs>',
        `with --wait: give up after this many seconds, exit 124 (0 = never; default ${DEFAULT_WAIT_TIMEOUT_SECS})`,
      )
      .option(
        '--verify',
        'check every narinfo of the cache (parses, NAR present with its size, references present, signed by our key), report each problem, exit 6 if any (also spelled `loft verify`; `loft verify PATH...` checks only those closures)',
      )
      .option(
        '--check-contents',
        'with --verify: also download each NAR and check FileHash, FileSize, NarHash, NarSize',
      )
      .option(
        '--repair',
        'with --verify: mend what the local store can (re-upload, re-sign, upload missing references); with --dry-run, list what it would do',
      )
      .option(
        '--delete-unrepairable',
        'with --verify --repair: delete narinfos that cannot be mended here, and every narinfo referencing them, referrers first',
      )
      .option(
        '--doctor',
        'probe the target (endpoint, TLS, credentials, bucket, writes under .loft/, conditional create, multipart, clock, anonymous read) and print one line per check; exit 1 if loft cannot work with it (also spelled `loft doctor`)',
      )
      .option('--json', 'with doctor: print the result as one JSON object')
      .option(
        '--watch-exec',
        "run the command after '--', upload every store path that becomes valid while it runs, exit with its exit code",
      )
      .argument(
        '[command...]',
        'with --watch-exec: the command and its arguments; with verify: store paths whose closures to check (no listing needed)',
      )
      .addHelpText(
        'after',
        '\nWithout an action flag loft runs the store-watching daemon (stop it with SIGTERM or SIGINT).\n' +
          'Exit codes: 0 ok, 1 some paths not uploaded (doctor: loft cannot work with the target), 2 usage, 3 configuration, 4 storage, 5 nix/path, 6 --verify found problems (or left some unmended), 70 internal, 124 --wait timed out, 130 stopped by a second signal.\n' +
          "--watch-exec exits with the command's code (128+N when a signal N ended it), or 1 when the command succeeded and uploads failed.\n",
      )
      // Options after the command's first word are the command's: `--watch-exec nix-build -A x` works
      // without `--` (with it, too).
      .passThroughOptions()
      .allowExcessArguments(false)
      .exitOverride()
      .configureOutput({ writeErr: () => undefined })
  );
}

/** Parses argv; help and version print and return undefined. Errors become UsageError. */
export function parseCli(argv: string[], version: string, out: (s: string) => void): Cli | undefined {
  let program = parseWith(argv, version, out);
  if (program === undefined) return undefined;
  // `loft verify ...` is `loft --verify ...`: the one word command of a flag-based CLI, spelled as
  // the issue and other cache tools spell it. Options after a first word are passed through as
  // arguments (for --watch-exec), so the word is swapped for the flag and the line parsed again.
  const word = program.args[0];
  if (
    (word === 'verify' || word === 'doctor') &&
    program.opts<Record<string, unknown>>().watchExec !== true
  ) {
    const at = argv.length - program.args.length;
    program = parseWith([...argv.slice(0, at), `--${word}`, ...argv.slice(at + 1)], version, out);
    if (program === undefined) return undefined;
  }
  const o = program.opts<Record<string, unknown>>();
  if (o.timeout !== undefined && o.wait !== true) throw new UsageError('--timeout only goes with --wait');
  checkVerifyFlags(o);
  if (o.json === true && o.doctor !== true)
    throw new UsageError('--json only goes with doctor: loft doctor --json');
  const list = (v: unknown) => (Array.isArray(v) ? (v as string[]) : undefined);
  const watchExec = watchExecCommand(o.watchExec === true, o.verify === true ? [] : program.args);
  const flags = {
    dryRun: o.dryRun === true,
    uploadPath: list(o.uploadPath),
    forceScan: o.forceScan === true,
    populateCache: o.populateCache === true,
    prune: o.prune === true,
    setBucketGrace: o.setBucketGrace === undefined ? undefined : parseGraceHours(o.setBucketGrace),
    // `--enqueue` alone is `true`: paths come from stdin or the hook's environment.
    enqueue: o.enqueue === undefined ? undefined : (list(o.enqueue) ?? []),
    status: o.status === true,
    wait: o.wait === true,
    timeoutSecs: parseTimeout(o.timeout),
    watchExec: o.watchExec === true ? watchExec : undefined,
    verify: o.verify === true,
    verifyPaths: o.verify === true && o.watchExec !== true ? [...program.args] : [],
    checkContents: o.checkContents === true,
    repair: o.repair === true,
    deleteUnrepairable: o.deleteUnrepairable === true,
    doctor: o.doctor === true,
    json: o.json === true,
    clearCache: o.clearCache === true,
    resetInitialScan: o.resetInitialScan === true,
  };
  return {
    config: String(o.config),
    configExplicit: program.getOptionValueSource('config') === 'cli',
    debug: o.debug === true,
    ...actionOf(flags),
  };
}

function parseWith(argv: string[], version: string, out: (s: string) => void): Command | undefined {
  const program = buildProgram(version);
  program.configureOutput({ writeOut: out, writeErr: () => undefined });
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return undefined;
      throw new UsageError(`${err.message.replace(/^error: /, '')} (see loft --help)`);
    }
    throw err;
  }
  return program;
}

function checkVerifyFlags(o: Record<string, unknown>): void {
  for (const flag of ['checkContents', 'repair'] as const) {
    if (o[flag] === true && o.verify !== true) {
      const name = flag === 'repair' ? '--repair' : '--check-contents';
      throw new UsageError(`${name} only goes with verify: loft verify ${name}`);
    }
  }
  if (o.deleteUnrepairable === true && o.repair !== true) {
    throw new UsageError(
      '--delete-unrepairable only goes with --repair: loft verify --repair --delete-unrepairable',
    );
  }
}

/** Hours as prune_grace_hours takes them, but above 0: grace 0 is a host's choice, not a bucket's. */
function parseGraceHours(value: unknown): number {
  const hours = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !(hours > 0) || hours > 8760) {
    throw new UsageError(
      `--set-bucket-grace wants hours above 0 and up to 8760, got ${JSON.stringify(value)}`,
    );
  }
  return hours;
}

function parseTimeout(value: unknown): number {
  if (value === undefined) return DEFAULT_WAIT_TIMEOUT_SECS;
  const secs = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(secs) || secs < 0) {
    throw new UsageError(
      `--timeout wants a number of seconds (0 for no limit), got ${JSON.stringify(value)}`,
    );
  }
  return secs;
}

function watchExecCommand(watchExec: boolean, args: string[]): string[] {
  if (watchExec && args.length === 0) {
    throw new UsageError(
      '--watch-exec needs a command: loft --watch-exec -- nix-build ... (see loft --help)',
    );
  }
  if (!watchExec && args.length > 0) {
    throw new UsageError(
      `too many arguments: ${JSON.stringify(args[0])} (only --watch-exec takes a command, and verify paths; see loft --help)`,
    );
  }
  return args;
}
