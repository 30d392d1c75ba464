// `loft --enqueue PATH... | -`: adds store paths to the daemon's queue and exits. Made for Nix's
// post-build-hook, which blocks the build until the hook returns and fails the build when the hook
// fails: so this never talks to the bucket, takes milliseconds, and ALWAYS exits 0; any trouble is a
// warning on stderr (the daemon's periodic reconciliation still finds the paths). Without path
// arguments (the README's hook runs `--enqueue $OUT_PATHS`, which is empty on Nix 2.8) it reads
// OUT_PATHS itself, and when that is empty too, asks Nix for the valid outputs of DRV_PATH.
//
// The hook runs as root inside nix-daemon, while the daemon usually runs as a user of its own (the
// NixOS module's `loft`). Two consequences: the secret files the daemon's config names may be out of
// reach (systemd credentials exist only inside the service), so they are not read; and a database
// file root created in the daemon's directory would lock the daemon out of its own queue, so root
// acts as the owner of that state before touching it.
import type { Readable } from 'node:stream';
import { loadConfig } from '../config/load.js';
import { UploadQueue } from '../state/queue.js';
import { ExitCode, InvalidPathError, oneLine, shownPath, type ExitCodeValue } from '../errors.js';
import { countOf } from './format-size.js';
import { outPathsFromEnv, validOutputsOf } from '../store/derivation-outputs.js';
import { resolveStorePath } from '../store/resolve-path.js';
import type { Cli } from './action.js';
import { collectPaths } from './read-paths.js';
import { actAsStateOwner } from './state-owner.js';

export interface EnqueueIo {
  stdin: Readable;
  say: (line: string) => void;
  warn: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

/** A hook must not hang a build on a locked database: wait at most this long for the lock. */
const LOCK_WAIT_MS = 2000;

export async function runEnqueueCommand(
  cli: Pick<Cli, 'config' | 'configExplicit' | 'debug'>,
  /** --enqueue's paths ("-" = stdin); empty: $OUT_PATHS, else $DRV_PATH's outputs. */
  given: string[],
  io: EnqueueIo,
): Promise<ExitCodeValue> {
  try {
    const { config } = await loadConfig({
      path: cli.config,
      explicit: cli.configExplicit,
      env: io.env,
      debug: cli.debug,
      skipSecrets: true,
    });
    const inputs = await hookInputs(given, config.storeDir, io);
    if (inputs.length === 0) {
      io.warn(`loft: warning: nothing to queue: ${nothingWhy(io.env)}`);
      return ExitCode.ok;
    }
    const paths: string[] = [];
    for (const input of inputs) {
      try {
        paths.push(await resolveStorePath(input, config.storeDir));
      } catch (err) {
        if (!(err instanceof InvalidPathError)) throw err;
        io.warn(`loft: warning: not queued: ${oneLine(err)}`);
      }
    }
    if (paths.length === 0) return ExitCode.ok;
    actAsStateOwner(config.localCachePath);
    const queue = UploadQueue.open(config.localCachePath, { busyTimeoutMs: LOCK_WAIT_MS });
    try {
      const added = queue.enqueue(paths);
      io.say(`queued ${countOf(paths.length, 'path')} for upload (${added} new)`);
    } finally {
      queue.close();
    }
  } catch (err) {
    io.warn(`loft: warning: could not queue paths for upload: ${oneLine(err)}`);
  }
  return ExitCode.ok;
}

/** The paths given, else OUT_PATHS, else the valid outputs of DRV_PATH (Nix 2.8's hook). */
async function hookInputs(given: string[], storeDir: string, io: EnqueueIo): Promise<string[]> {
  if (given.length > 0) return collectPaths(given, io.stdin);
  const outPaths = outPathsFromEnv(io.env);
  if (outPaths.length > 0) return outPaths;
  const drv = io.env['DRV_PATH'];
  if (drv === undefined || drv.trim() === '') return [];
  return validOutputsOf(drv.trim(), storeDir);
}

function nothingWhy(env: NodeJS.ProcessEnv): string {
  const drv = env['DRV_PATH']?.trim() ?? '';
  if (drv === '') return 'no paths given, and neither OUT_PATHS nor DRV_PATH is set';
  return `no output of ${shownPath(drv)} is a valid store path`;
}
