// Runs the `nix` command: execFile (no shell, so paths are never interpreted), with the
// nix-command feature switched on per call (Nix 2.8 needs it for `nix path-info` and friends, and
// loft must not depend on the machine's nix.conf), and typed errors carrying Nix's own last word.
import { execFile, type ExecFileException } from 'node:child_process';
import { NixError } from '../errors.js';

export interface RunNixOptions {
  /** Environment for nix (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Program to run (default `nix`); e.g. `nix-store`. */
  program?: string;
  /** Paths or other user-supplied operands, passed after `--` so none is read as an option. */
  operands?: string[];
  signal?: AbortSignal;
}

export interface NixOutput {
  stdout: string;
  stderr: string;
}

/** path-info of a large closure prints megabytes of JSON; execFile's default (1 MiB) would cut it. */
const MAX_BUFFER = 512 * 1024 * 1024;

const FEATURE_FLAGS = ['--extra-experimental-features', 'nix-command'];

/** The last non-empty stderr line: Nix prints its `error: ...` there, after any progress noise. */
export function lastStderrLine(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines[lines.length - 1] ?? '';
}

function describeFailure(command: string, err: ExecFileException, stderr: string): string {
  const last = lastStderrLine(stderr);
  const how =
    typeof err.code === 'number'
      ? `exited with status ${err.code}`
      : err.signal
        ? `was killed by ${err.signal}`
        : 'failed';
  return `\`${command}\` ${how}${last === '' ? '' : `: ${last}`}`;
}

/**
 * Runs `nix ARGS -- OPERANDS` (or another Nix program) and resolves with its output. Rejects with
 * NixError when nix is missing, exits non-zero or is killed; the message is one line.
 */
export function runNix(args: string[], opts: RunNixOptions = {}): Promise<NixOutput> {
  const program = opts.program ?? 'nix';
  const argv = [...FEATURE_FLAGS, ...args, ...(opts.operands === undefined ? [] : ['--', ...opts.operands])];
  const command = [program, ...args].join(' ');
  return new Promise((resolve, reject) => {
    execFile(
      program,
      argv,
      {
        env: opts.env ?? process.env,
        maxBuffer: MAX_BUFFER,
        encoding: 'utf8',
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
      (err, stdout, stderr) => {
        if (err === null) return resolve({ stdout, stderr });
        if (err.code === 'ENOENT') {
          return reject(
            new NixError(`${program} not found on PATH: install Nix (2.8 or newer) or add it to PATH`, {
              cause: err,
            }),
          );
        }
        reject(new NixError(describeFailure(command, err, stderr), { cause: err }));
      },
    );
  });
}
