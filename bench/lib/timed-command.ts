// Runs a command as a child process and measures its wall time and peak RSS. With GNU time
// (/usr/bin/time, Debian package `time`) the peak comes from its "Maximum resident set size";
// without it, /proc/<pid>/status VmHWM is polled (a lower bound between polls, fine for a bench).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const GNU_TIME = '/usr/bin/time';

export interface TimedRun {
  seconds: number;
  /** Peak resident set size of the command (not of the time wrapper), in KiB. */
  maxRssKb: number;
  /** User + system CPU seconds of the command and its children (NaN without GNU time). */
  cpuSeconds: number;
  /** The two parts of cpuSeconds: the kernel's share shows file and memory work apart. */
  userSeconds: number;
  systemSeconds: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface TimedOptions {
  env?: NodeJS.ProcessEnv;
  /** Fail (throw) when the command exits non-zero. Default true. */
  check?: boolean;
}

export async function runTimed(cmd: string, args: string[], opts: TimedOptions = {}): Promise<TimedRun> {
  const useGnuTime = existsSync(GNU_TIME);
  const dir = mkdtempSync(join(tmpdir(), 'loft-bench-time-'));
  const report = join(dir, 'time.txt');
  try {
    const [bin, argv] = useGnuTime ? [GNU_TIME, ['-v', '-o', report, cmd, ...args]] : [cmd, args];
    const start = process.hrtime.bigint();
    const child = spawn(bin, argv, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    let polledKb = 0;
    const poll = useGnuTime
      ? undefined
      : setInterval(() => (polledKb = Math.max(polledKb, vmHwmKb(child.pid))), 20);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (poll) clearInterval(poll);
    const userSeconds = useGnuTime ? gnuTimeField(report, /User time \(seconds\): ([\d.]+)/) : Number.NaN;
    const systemSeconds = useGnuTime ? gnuTimeField(report, /System time \(seconds\): ([\d.]+)/) : Number.NaN;
    const run: TimedRun = {
      seconds,
      maxRssKb: useGnuTime ? gnuTimeField(report, /Maximum resident set size \(kbytes\): (\d+)/) : polledKb,
      cpuSeconds: userSeconds + systemSeconds,
      userSeconds,
      systemSeconds,
      code,
      stdout: Buffer.concat(out).toString(),
      stderr: Buffer.concat(err).toString(),
    };
    if ((opts.check ?? true) && code !== 0) {
      throw new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${run.stderr.slice(-2000)}`);
    }
    return run;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function gnuTimeField(report: string, pattern: RegExp): number {
  const text = existsSync(report) ? readFileSync(report, 'utf8') : '';
  const m = pattern.exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

function vmHwmKb(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0; // already gone
  }
}

/**
 * Writes what earlier runs left in the page cache to disk before the next run is timed. `nix copy`
 * and s3rver do not fsync: their hundreds of MB were written back while the next command ran,
 * competing for the 2 cores and the disk, and loft's own fsyncs waited behind them.
 */
export function flushEarlierWrites(): void {
  execFileSync('sync');
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** nix copy then the sync, as one run: times and CPU add up, the peak is the larger one. */
export function combined(copy: TimedRun, sync: TimedRun): TimedRun {
  return {
    ...sync,
    seconds: copy.seconds + sync.seconds,
    cpuSeconds: copy.cpuSeconds + sync.cpuSeconds,
    userSeconds: copy.userSeconds + sync.userSeconds,
    systemSeconds: copy.systemSeconds + sync.systemSeconds,
    maxRssKb: Math.max(copy.maxRssKb, sync.maxRssKb),
  };
}

/**
 * A ratio printed beside its bar: two decimals, or three when two would print the bar itself, so
 * the figure shows which side of the bar it is on (E's 1.597x printed as "1.60x ... MISSED").
 */
export function beside(value: number, bar: number): string {
  const two = value.toFixed(2);
  return two === bar.toFixed(2) && value !== bar ? value.toFixed(3) : two;
}
