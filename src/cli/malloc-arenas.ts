// The daemon runs with glibc's malloc limited to two arenas: MALLOC_ARENA_MAX=2, set by executing
// itself once more at its start, in the same process (process.execve keeps the PID, so systemd and
// whoever signals the daemon see one process). glibc reads the variable only when a process starts.
//
// Why: glibc gives each thread that allocates while another holds an arena's lock an arena of its
// own, up to 8 per core. The uploads' threads (libuv's pool compressing and hashing, V8's helpers)
// leave their arenas strewn with short-lived chunks between a few long-lived ones, and malloc_trim
// (state/native-heap-trim.ts) gives back only whole free pages. Measured on a daemon idle after
// uploading 100,000 paths (docs/benchmarks.md): the other threads' arenas held 25-48 MB after the
// trim; with two arenas 6 MB, and the idle RSS fell from 114.5 to 88.5 MB.
//
// Started by one of loft's launchers (src/cli/launch-env.ts), the variable is set already and nothing
// is done; this exec is for `node dist/cli/main.js` and other ways that bypass them.
//
// A variable the environment sets already (any value, also a larger one) is left as it is; so is a
// platform without glibc's allocator or a Node without process.execve (added in Node 23.11).
import { LAUNCH_ENV } from './launch-env.js';

/** The arena limit the daemon runs with, unless its environment sets one: the launchers' value. */
export const DAEMON_MALLOC_ARENA_MAX = LAUNCH_ENV['MALLOC_ARENA_MAX']!;

export interface ExecDeps {
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  execPath: string;
  /** Node's options (e.g. --heapsnapshot-signal) and the script's arguments, kept across the exec. */
  execArgv: readonly string[];
  argv: readonly string[];
  execve: ((file: string, args: string[], env: NodeJS.ProcessEnv) => never) | undefined;
}

export const processExecDeps = (): ExecDeps => ({
  env: process.env,
  platform: process.platform,
  execPath: process.execPath,
  execArgv: process.execArgv,
  argv: process.argv,
  execve: typeof process.execve === 'function' ? process.execve.bind(process) : undefined,
});

/**
 * Executes this process again with MALLOC_ARENA_MAX set, when it is not set yet (and the platform
 * is Linux and Node has process.execve); then it does not return. Call it before anything is
 * opened: only the standard streams survive the exec. Returns false when nothing was done.
 */
export function limitMallocArenas(deps: ExecDeps = processExecDeps()): boolean {
  if (deps.platform !== 'linux' || deps.execve === undefined) return false;
  if (deps.env['MALLOC_ARENA_MAX'] !== undefined) return false;
  const args = [deps.execPath, ...deps.execArgv, ...deps.argv.slice(1)];
  deps.execve(deps.execPath, args, { ...deps.env, MALLOC_ARENA_MAX: DAEMON_MALLOC_ARENA_MAX });
  return true;
}
