// The built CLI as a child process, the way users and systemd run it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { nixEnv } from './nix-env.js';

export const LOFT_MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface LoftRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function runLoft(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; stdin?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<LoftRun> {
  if (!existsSync(LOFT_MAIN)) throw new Error(`${LOFT_MAIN} is missing: run 'npm run build' first`);
  const child = spawn(process.execPath, [LOFT_MAIN, ...args], {
    env: { ...nixEnv(), ...opts.env },
    cwd: opts.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.end(opts.stdin ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

/** Keys of pino's JSON lines on stderr, parsed; non-JSON lines are skipped. */
export function logLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
