// Running the command of `loft --watch-exec -- CMD ARGS...`: no shell (the argv is the user's, word
// for word), the terminal and pipes shared (stdio inherited), and the signals that stop a job
// passed on, so Ctrl-C or a CI runner's cancel reaches the build, not only loft.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/** Signals passed on to the command. SIGINT from a terminal reaches it anyway (same process group). */
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** How the command ended, as a shell would report it. */
export interface ChildExit {
  /** The command's exit code; 128 + N when signal N ended it; 127 when it could not be started. */
  code: number;
  /** Why it could not be started (ENOENT, EACCES), when it could not. */
  spawnError?: string;
}

export interface RunningChild {
  /** Resolves when the command has ended (or could not start). */
  exited: Promise<ChildExit>;
  /** Passes a signal on, while the command runs. */
  kill(signal: NodeJS.Signals): void;
}

/** Starts `argv` without a shell, stdio inherited. */
export function startChild(argv: readonly string[]): RunningChild {
  const [file, ...args] = argv;
  if (file === undefined)
    return { exited: Promise.resolve({ code: 127, spawnError: 'no command given' }), kill() {} };
  const child = spawn(file, args, { stdio: 'inherit' });
  const exited = new Promise<ChildExit>((resolve) => {
    // A command that cannot start (ENOENT, EACCES) gets 'error' and no 'exit'.
    child.once('error', (err: NodeJS.ErrnoException) =>
      resolve({ code: 127, spawnError: err.code ?? err.message }),
    );
    child.once('exit', (code, signal) => {
      resolve({ code: code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0) });
    });
  });
  return {
    exited,
    kill(signal) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/**
 * Calls `handler` for each SIGINT, SIGTERM or SIGHUP loft receives, instead of Node's default (an
 * immediate exit); returns the function that removes the handlers.
 */
export function onStopSignals(handler: (signal: NodeJS.Signals) => void): () => void {
  for (const s of FORWARDED) process.on(s, handler);
  return () => {
    for (const s of FORWARDED) process.off(s, handler);
  };
}
