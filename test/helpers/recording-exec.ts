// A stand-in for process.execve and the process facts around it (src/cli/malloc-arenas.ts's
// ExecDeps) that records each exec instead of replacing the test process: for the unit tests of
// the daemon's re-executions (the malloc arena limit, the fresh start).
import type { ExecDeps } from '../../src/cli/malloc-arenas.js';

export interface RecordedExec {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** Linux, /bin/node running /loft/dist/cli/main.js -c loft.toml with one Node option; `edits` over it. */
export function recordingExec(edits: Partial<ExecDeps> = {}): { d: ExecDeps; calls: RecordedExec[] } {
  const calls: RecordedExec[] = [];
  const d: ExecDeps = {
    env: { PATH: '/bin' },
    platform: 'linux',
    execPath: '/bin/node',
    execArgv: ['--heapsnapshot-signal=SIGUSR2'],
    argv: ['/bin/node', '/loft/dist/cli/main.js', '-c', 'loft.toml'],
    execve: (file, args, env) => {
      calls.push({ file, args, env });
      return undefined as never;
    },
    ...edits,
  };
  return { d, calls };
}
