// The built CLI as a child process, the way users and systemd run it. Every run's output is also
// handed to the suite-wide secret check (test-secrets.ts), which greps it after all tests ran.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { nixEnv } from './nix-env.js';
import { recordChildOutput } from './test-secrets.js';

export const LOFT_MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface LoftRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface LoftRunOptions {
  env?: NodeJS.ProcessEnv;
  /** Bytes are passed as they are (paths that are not UTF-8). */
  stdin?: string | Buffer;
  cwd?: string;
  timeoutMs?: number;
}

/** Whether `npm run build` has made the CLI (unit-test-only runs, like the Nix package's, do not). */
export function isBuilt(): boolean {
  return existsSync(LOFT_MAIN);
}

function assertBuilt(): void {
  if (!isBuilt()) throw new Error(`${LOFT_MAIN} is missing: run 'npm run build' first`);
}

/** A short name for the log file: the action flag, else the first argument. */
function labelOf(args: readonly string[]): string {
  return args.find((a) => a.startsWith('--') && a !== '--debug' && a !== '--config') ?? args[0] ?? 'daemon';
}

export async function runLoft(args: string[], opts: LoftRunOptions = {}): Promise<LoftRun> {
  assertBuilt();
  const child = spawn(process.execPath, [LOFT_MAIN, ...args], {
    env: { ...nixEnv(), ...opts.env },
    cwd: opts.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.on('error', () => undefined); // loft may exit before reading stdin (EPIPE)
  child.stdin.end(opts.stdin ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  const stdout = Buffer.concat(out);
  const stderr = Buffer.concat(err);
  recordChildOutput(labelOf(args), stdout, stderr);
  return { code, stdout: stdout.toString(), stderr: stderr.toString() };
}

/**
 * Starts the built CLI (e.g. the daemon) and returns the process; stdout and stderr are piped
 * (other stdio as given), and whatever they carried is recorded for the secret check at exit.
 */
export function spawnLoft(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: 'ignore' | 'pipe' } = {},
): ChildProcess {
  assertBuilt();
  const stdio: StdioOptions = [opts.stdin ?? 'ignore', 'pipe', 'pipe'];
  const child = spawn(process.execPath, [LOFT_MAIN, ...args], {
    env: opts.env ?? nixEnv(),
    cwd: opts.cwd,
    stdio,
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  child.on('close', () => recordChildOutput(labelOf(args), Buffer.concat(out), Buffer.concat(err)));
  return child;
}

/** Keys of pino's JSON lines on stderr, parsed; non-JSON lines are skipped. */
export function logLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
