#!/usr/bin/env node
// loft's entry point: parse the command line, load the configuration, run one command, and turn
// every failure into one line on stderr and a documented exit code.
import './quiet-sdk-warning.js';
import { createRequire } from 'node:module';
import { describeConfig } from '../config/describe-config.js';
import { loadConfig } from '../config/load.js';
import { ExitCode, isLoftError, oneLine, UsageError, type ExitCodeValue } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { parseCli, type CliOptions } from './program.js';
import { collectPaths } from './read-paths.js';
import { openRuntime } from './runtime.js';
import { runUpload } from './upload-command.js';
import { runCacheMaintenance, runPopulateCache } from './cache-commands.js';
import { listValidStorePaths } from '../store/all-paths.js';

const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

async function main(argv: string[]): Promise<ExitCodeValue> {
  let cli: CliOptions | undefined;
  try {
    cli = parseCli(argv, version, (s) => process.stdout.write(s));
  } catch (err) {
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

async function run(cli: CliOptions, logger: Logger): Promise<ExitCodeValue> {
  const actions = [cli.uploadPaths.length > 0, cli.forceScan, cli.populateCache, cli.prune].filter(
    Boolean,
  ).length;
  if (actions > 1) throw new UsageError('give one of --upload-path, --force-scan, --populate-cache, --prune');
  const { config, warnings } = await loadConfig({
    path: cli.config,
    explicit: cli.configExplicit,
    env: process.env,
    debug: cli.debug,
  });
  for (const w of warnings) logger.warn(w);
  logger.debug({ config: describeConfig(config) }, 'configuration');
  if (!config.signingKey && (cli.uploadPaths.length > 0 || cli.forceScan)) {
    logger.warn(
      'no signing key configured (loft.signing_key_path): narinfos are unsigned, and Nix accepts them only with require-sigs = false',
    );
  }
  const maintenance = cli.clearCache || cli.resetInitialScan;
  if (actions === 0 && !maintenance) {
    throw new UsageError(
      'the store-watching daemon is not available in this version yet; use --upload-path (see loft --help)',
    );
  }
  if (cli.prune) throw new UsageError('pruning is not available in this version yet');
  const uploadInputs = cli.uploadPaths.length > 0 ? await collectPaths(cli.uploadPaths, process.stdin) : [];
  const rt = await openRuntime(config, logger);
  try {
    if (maintenance) runCacheMaintenance(rt, cli, (l) => console.log(l));
    const io = { stdout: (l: string) => console.log(l), stderr: process.stderr };
    if (cli.uploadPaths.length > 0) {
      return (await runUpload(rt, uploadInputs, { dryRun: cli.dryRun, explicit: true }, io)).exitCode;
    }
    if (cli.forceScan) {
      const all = await listValidStorePaths(config.storeDir);
      const opts = { dryRun: cli.dryRun, explicit: false, ignoreLocalCache: true };
      return (await runUpload(rt, all, opts, io)).exitCode;
    }
    if (cli.populateCache) await runPopulateCache(rt, cli.dryRun, (l) => console.log(l));
    return ExitCode.ok;
  } finally {
    await rt.close();
  }
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
