#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=1048576 node
// loft's entry point: parse the command line, load the configuration, run one command, and turn
// every failure into one line on stderr and a documented exit code.
import { createRequire } from 'node:module';
import { describeConfig } from '../config/describe-config.js';
import { DEFAULTS } from '../config/defaults.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ConfigError, ExitCode, isLoftError, oneLine, UsageError, type ExitCodeValue } from '../errors.js';
import { nodeIsRecentEnough, nodeTooOldMessage } from './node-version.js';
import type { Action, ActionKind, Cli } from './action.js';
import { createLogger, type Logger } from '../log.js';
import { parseCli } from './program.js';
import { limitMallocArenas } from './malloc-arenas.js';
import { cacheCompiledCode } from './compile-cache.js';
import { collectPaths } from './read-paths.js';
import { openRuntime } from './runtime.js';
import { growOldGenerationByFour, holdYoungGeneration } from '../v8-heap.js';

// Each command's modules load when that command runs: a one-off `--upload-path` answered by the
// presence cache is over in a few hundred milliseconds, of which loading the daemon, prune and
// watch code it never runs took a noticeable share (docs/architecture.md, "where the time goes").
const upload = () => import('./upload-command.js');
const cacheCommands = () => import('./cache-commands.js');
const prune = () => import('./prune-command.js');
const stateOwner = () => import('./state-owner.js');
const verify = () => import('./verify-command.js');

const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

async function main(argv: string[]): Promise<number> {
  holdYoungGeneration();
  growOldGenerationByFour();
  let cli: Cli | undefined;
  try {
    cli = parseCli(argv, `${version} (Node ${process.version})`, (s) => process.stdout.write(s));
  } catch (err) {
    // A post-build hook must never fail a build, whatever its command line looks like.
    if (argv.includes('--enqueue')) {
      process.stderr.write(`loft: warning: could not queue paths for upload: ${oneLine(err)}\n`);
      return ExitCode.ok;
    }
    return report(err, undefined);
  }
  if (!cli) return ExitCode.ok;
  // Before anything is opened: the daemon executes itself once more with fewer malloc arenas.
  if (cli.action.kind === 'daemon') limitMallocArenas();
  const logger = createLogger({ debug: cli.debug });
  try {
    return await run(cli, logger);
  } catch (err) {
    return report(err, logger);
  }
}

async function run(cli: Cli, logger: Logger): Promise<number> {
  const { action } = cli;
  // Before any native addon loads: on too old a Node the SQLite addon crashes the process.
  if (!nodeIsRecentEnough(process.versions.node)) {
    const why = nodeTooOldMessage(process.versions.node, process.execPath);
    // A post-build hook must never fail a build.
    if (action.kind !== 'enqueue') throw new ConfigError(why);
    process.stderr.write(`loft: warning: could not queue paths for upload: ${why}\n`);
    return ExitCode.ok;
  }
  // Before anything that could fail: a post-build hook must never fail a build.
  if (action.kind === 'enqueue') {
    return (await import('./enqueue-command.js')).runEnqueueCommand(cli, action.paths, enqueueIo());
  }
  const { config, warnings } = await loadConfig({
    path: cli.config,
    explicit: cli.configExplicit,
    env: process.env,
    debug: cli.debug,
    // --status and --wait read only the local database: the service's secret files (systemd
    // credentials) are out of reach of an admin's shell and not needed.
    ...(action.kind === 'status' || action.kind === 'wait' ? { skipSecrets: true } : {}),
  });
  for (const w of warnings) logger.warn(w);
  logger.debug({ config: describeConfig(config) }, 'configuration');
  const everything = UPLOADS_EVERYTHING[action.kind];
  if (everything !== undefined) refuseEmbeddedDefault(config, everything);
  if (!config.signingKey && uploads(action)) logger.warn(unsignedWarning(config));
  switch (action.kind) {
    case 'status':
      (await stateOwner()).actAsStateOwner(config.localCachePath);
      return (await import('./status-command.js')).runStatusCommand(config, (l) => console.log(l));
    case 'wait':
      (await stateOwner()).actAsStateOwner(config.localCachePath);
      return (await import('./wait-command.js')).runWaitCommand(config, action, waitIo());
    case 'daemon':
      return (await import('./daemon-command.js')).runDaemonCommand(config, logger);
    case 'watch-exec':
      return (await import('./watch-exec-command.js')).runWatchExecCommand(config, logger, action.command);
    case 'doctor':
      return (await import('./doctor-command.js')).runDoctor(config, { json: action.json }, (l) =>
        console.log(l),
      );
    default:
      return runOneOff(cli, action, config, logger);
  }
}

/** The actions that open the object store and the presence cache, run once, and exit. */
type OneOff = Exclude<Action, { kind: 'enqueue' | 'status' | 'wait' | 'daemon' | 'watch-exec' | 'doctor' }>;

async function runOneOff(cli: Cli, action: OneOff, config: Config, logger: Logger): Promise<number> {
  // Before the S3 SDK and the command's modules load: their compiled code comes from the cache.
  cacheCompiledCode(config.localCachePath);
  if (action.kind === 'prune') (await prune()).assertPruneEnabled(config);
  const uploadInputs = action.kind === 'upload' ? await collectPaths(action.paths, process.stdin) : [];
  const say = (l: string) => console.log(l);
  const rt = await openRuntime(config, logger);
  try {
    if (cli.maintenance) (await cacheCommands()).runCacheMaintenance(rt, cli.maintenance, say);
    const io = { stdout: say, stderr: process.stderr };
    switch (action.kind) {
      case 'cache-maintenance':
        return ExitCode.ok;
      case 'prune':
        return await (await prune()).runPrune(rt, action, say);
      case 'set-bucket-grace': {
        const grace = await import('./bucket-grace-command.js');
        return await grace.runSetBucketGrace(rt, action.hours, action.dryRun, say);
      }
      case 'verify':
        return await (await verify()).runVerify(rt, action, { say, stderr: process.stderr });
      case 'upload': {
        const opts = { dryRun: action.dryRun, explicit: true };
        return (await (await upload()).runUpload(rt, uploadInputs, opts, io)).exitCode;
      }
      case 'force-scan': {
        const all = await (await import('../store/all-paths.js')).listValidStorePaths(config.storeDir);
        const opts = {
          dryRun: action.dryRun,
          explicit: false,
          ignoreLocalCache: true,
          listedFromStore: true,
        };
        return (await (await upload()).runUpload(rt, all, opts, io)).exitCode;
      }
      case 'populate-cache':
        await (await cacheCommands()).runPopulateCache(rt, action.dryRun, say);
        return ExitCode.ok;
    }
  } finally {
    await rt.close();
  }
}

/** Actions that would copy the whole store, and so refuse the embedded default config. */
const UPLOADS_EVERYTHING: Partial<Record<ActionKind, string>> = {
  daemon: 'the daemon uploads every new store path',
  'force-scan': '--force-scan uploads every valid store path',
  'watch-exec': '--watch-exec uploads every path the command builds while it runs',
};

/** The action may upload, and so warns when it would publish unsigned narinfos. */
function uploads(action: Action): boolean {
  switch (action.kind) {
    case 'upload':
    case 'force-scan':
    case 'daemon':
    case 'watch-exec':
      return true;
    case 'verify':
      return action.repair;
    default:
      return false;
  }
}

/**
 * The embedded default is for one-off commands (`--upload-path`); the daemon or --force-scan on it
 * would copy the whole store, unsigned, into the working directory. Those need a file saying where.
 */
function refuseEmbeddedDefault(config: Config, what: string): void {
  if (config.configPath !== undefined) return;
  throw new UsageError(
    `no config file (${DEFAULTS.configFile} not found here): ${what} and needs a config that says where; ` +
      'run loft -c FILE (start from loft.toml.example), or use --upload-path for a one-off upload',
  );
}

function unsignedWarning(config: Config): string {
  if (config.configPath === undefined) {
    return `no config file: using the embedded default, an UNSIGNED cache in ${describeTarget(config)}; Nix accepts it only with require-sigs = false (give -c FILE with loft.signing_key_path to sign)`;
  }
  return 'no signing key configured (loft.signing_key_path): narinfos are unsigned, and Nix accepts them only with require-sigs = false';
}

function describeTarget(config: Config): string {
  const storage = config.storage;
  if (storage.kind === 'http') return storage.http.url;
  return storage.kind === 'local' ? storage.path : `s3://${storage.s3.bucket}`;
}

function enqueueIo() {
  return {
    stdin: process.stdin,
    say: (line: string) => console.log(line),
    warn: (line: string) => process.stderr.write(`${line}\n`),
    env: process.env,
  };
}

function waitIo() {
  return {
    say: (line: string) => console.log(line),
    warn: (line: string) => process.stderr.write(`${line}\n`),
  };
}

function report(err: unknown, logger: Logger | undefined): ExitCodeValue {
  if (isLoftError(err)) {
    process.stderr.write(`loft: ${oneLine(err)}\n`);
    logger?.debug({ err }, 'command failed');
    return err.exitCode;
  }
  process.stderr.write(`loft: internal error: ${oneLine(err)} (run with --debug for details)\n`);
  logger?.debug({ err }, 'internal error');
  return ExitCode.internal;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`loft: internal error: ${oneLine(err)}\n`);
    process.exitCode = ExitCode.internal;
  },
);
