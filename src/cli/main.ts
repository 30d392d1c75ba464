#!/usr/bin/env node
// loft's entry point: parse the command line, load the configuration, run one command, and turn
// every failure into one line on stderr and a documented exit code.
import { createRequire } from 'node:module';
import { describeConfig } from '../config/describe-config.js';
import { DEFAULTS } from '../config/defaults.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ExitCode, isLoftError, oneLine, UsageError, type ExitCodeValue } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { parseCli, type CliOptions } from './program.js';
import { collectPaths } from './read-paths.js';
import { openRuntime } from './runtime.js';

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
  let cli: CliOptions | undefined;
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
  const logger = createLogger({ debug: cli.debug });
  try {
    return await run(cli, logger);
  } catch (err) {
    return report(err, logger);
  }
}

async function run(cli: CliOptions, logger: Logger): Promise<number> {
  // Before anything that could fail: a post-build hook must never fail a build.
  if (cli.enqueue) return (await import('./enqueue-command.js')).runEnqueueCommand(cli, enqueueIo());
  const actions = [
    cli.uploadPaths.length > 0,
    cli.forceScan,
    cli.populateCache,
    cli.prune,
    cli.setBucketGrace !== undefined,
    cli.status,
    cli.wait,
    cli.watchExec.length > 0,
    cli.verify,
  ].filter(Boolean).length;
  if (actions > 1) {
    throw new UsageError(
      'give one of --upload-path, --force-scan, --populate-cache, --prune, --set-bucket-grace, --status, --wait, --watch-exec, verify',
    );
  }
  const { config, warnings } = await loadConfig({
    path: cli.config,
    explicit: cli.configExplicit,
    env: process.env,
    debug: cli.debug,
    // --status reads only the local database: the service's secret files (systemd credentials)
    // are out of reach of an admin's shell and not needed.
    ...(cli.status || cli.wait ? { skipSecrets: true } : {}),
  });
  for (const w of warnings) logger.warn(w);
  logger.debug({ config: describeConfig(config) }, 'configuration');
  const maintenance = cli.clearCache || cli.resetInitialScan;
  const daemon = actions === 0 && !maintenance;
  if (cli.status) {
    (await stateOwner()).actAsStateOwner(config.localCachePath);
    return (await import('./status-command.js')).runStatusCommand(config, (l) => console.log(l));
  }
  if (cli.wait) {
    (await stateOwner()).actAsStateOwner(config.localCachePath);
    return (await import('./wait-command.js')).runWaitCommand(
      config,
      { timeoutSecs: cli.timeoutSecs },
      waitIo(),
    );
  }
  if (daemon) refuseEmbeddedDefault(config, 'the daemon uploads every new store path');
  if (cli.forceScan) refuseEmbeddedDefault(config, '--force-scan uploads every valid store path');
  if (cli.watchExec.length > 0) {
    refuseEmbeddedDefault(config, '--watch-exec uploads every path the command builds while it runs');
  }
  if (
    !config.signingKey &&
    (cli.uploadPaths.length > 0 || cli.forceScan || daemon || cli.watchExec.length > 0 || cli.repair)
  ) {
    logger.warn(unsignedWarning(config));
  }
  if (daemon) return startDaemon(cli, config, logger);
  if (cli.watchExec.length > 0) {
    if (cli.dryRun) throw new UsageError('--dry-run does not go with --watch-exec, which always uploads');
    return (await import('./watch-exec-command.js')).runWatchExecCommand(config, logger, cli.watchExec);
  }
  if (cli.prune) (await prune()).assertPruneEnabled(config);
  const uploadInputs = cli.uploadPaths.length > 0 ? await collectPaths(cli.uploadPaths, process.stdin) : [];
  const rt = await openRuntime(config, logger);
  try {
    if (maintenance) (await cacheCommands()).runCacheMaintenance(rt, cli, (l) => console.log(l));
    if (cli.prune) return await (await prune()).runPrune(rt, { dryRun: cli.dryRun }, (l) => console.log(l));
    if (cli.setBucketGrace !== undefined) {
      const grace = await import('./bucket-grace-command.js');
      return await grace.runSetBucketGrace(rt, cli.setBucketGrace, cli.dryRun, (l) => console.log(l));
    }
    if (cli.verify)
      return await (
        await verify()
      ).runVerify(rt, cli, { say: (l) => console.log(l), stderr: process.stderr });
    const io = { stdout: (l: string) => console.log(l), stderr: process.stderr };
    if (cli.uploadPaths.length > 0) {
      return (await (await upload()).runUpload(rt, uploadInputs, { dryRun: cli.dryRun, explicit: true }, io))
        .exitCode;
    }
    if (cli.forceScan) {
      const all = await (await import('../store/all-paths.js')).listValidStorePaths(config.storeDir);
      const opts = { dryRun: cli.dryRun, explicit: false, ignoreLocalCache: true, listedFromStore: true };
      return (await (await upload()).runUpload(rt, all, opts, io)).exitCode;
    }
    if (cli.populateCache)
      await (await cacheCommands()).runPopulateCache(rt, cli.dryRun, (l) => console.log(l));
    return ExitCode.ok;
  } finally {
    await rt.close();
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
  return config.storage.kind === 'local' ? config.storage.path : `s3://${config.storage.s3.bucket}`;
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

async function startDaemon(cli: CliOptions, config: Config, logger: Logger): Promise<ExitCodeValue> {
  if (cli.dryRun) {
    throw new UsageError('--dry-run needs an action such as --upload-path; the daemon always uploads');
  }
  return (await import('./daemon-command.js')).runDaemonCommand(config, logger);
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
