// `loft --watch-exec -- CMD ARGS...`: runs a command (a CI job's `nix build`, `nix-build`,
// `nix develop -c ...`) while watching the store, uploads every path that becomes valid meanwhile
// with its missing closure, finishes the uploads when the command ends, and exits with the
// command's own code, so it can wrap a build step without changing what the step reports.
//
// Signals: the first SIGINT/SIGTERM/SIGHUP goes to the command (a terminal's Ctrl-C reaches it
// anyway), and what it built before it stopped is still uploaded. A signal after that, or once
// the command has ended, aborts the uploads in flight (no narinfo is written for an unfinished
// path, so the cache stays whole) and loft exits 130.
import type { Config } from '../config/schema.js';
import { WatchSession, type WatchSessionResult } from '../daemon/watch-session.js';
import { ExitCode, isTargetFailure, oneLine } from '../errors.js';
import type { Logger } from '../log.js';
import { onStopSignals, startChild, type ChildExit, type RunningChild } from './exec-child.js';
import { batchUploader } from './batch-uploader.js';
import { openRuntime } from './runtime.js';
import { summaryLines } from './summary.js';

/** Returns the command's exit code, or one of loft's (see exitCodeFor). */
export async function runWatchExecCommand(config: Config, logger: Logger, argv: string[]): Promise<number> {
  const started = Date.now();
  const rt = await openRuntime(config, logger);
  try {
    const session = new WatchSession({
      storeDir: config.storeDir,
      uploadDerivations: config.uploadDerivations,
      upload: batchUploader(rt),
      logger: logger.child({ component: 'watch-exec' }),
    });
    await session.start();
    let commandEnded = false;
    let signalled = false;
    let cancelled = false;
    let child: RunningChild | undefined;
    // Installed before the command starts: it may print, and be signalled, at once.
    const removeHandlers = onStopSignals((signal) => {
      child?.kill(signal); // a no-op once the command has ended
      if (!signalled && !commandEnded) {
        signalled = true;
        logger.info({ signal }, 'signal passed on to the command; its paths are still uploaded');
        return;
      }
      logger.warn({ signal }, 'signal received: aborting the uploads in flight');
      cancelled = true;
      session.cancel();
    });
    try {
      child = startChild(argv);
      const exit = await child.exited;
      commandEnded = true;
      if (exit.spawnError !== undefined) {
        process.stderr.write(
          `loft: cannot run ${JSON.stringify(argv[0])}: ${exit.spawnError}; check the command and PATH\n`,
        );
      }
      const result = await session.finish();
      report(result, Date.now() - started);
      return cancelled ? ExitCode.interrupted : exitCodeFor(exit, result);
    } finally {
      removeHandlers();
    }
  } finally {
    await rt.close();
  }
}

/**
 * The command's code when it failed (so CI reports the build's failure, not ours); 4 when the
 * object store refused loft (access lost, no bucket: the same code as --upload-path); 1 (partial)
 * when it succeeded but some uploads failed, so a CI step notices a cache that missed paths.
 */
export function exitCodeFor(exit: ChildExit, result: WatchSessionResult): number {
  if (exit.code !== 0) return exit.code;
  if (isTargetFailure(result.fatal)) return ExitCode.storage;
  return result.fatal !== undefined || result.report.failed.length > 0 ? ExitCode.partial : ExitCode.ok;
}

/** The summary goes to stderr: stdout is the command's (`out=$(loft --watch-exec -- nix build ...)`). */
function report(result: WatchSessionResult, elapsedMs: number): void {
  if (result.fatal !== undefined) process.stderr.write(`loft: uploads stopped: ${oneLine(result.fatal)}\n`);
  for (const line of summaryLines(result.report, elapsedMs, false)) process.stderr.write(`${line}\n`);
}
