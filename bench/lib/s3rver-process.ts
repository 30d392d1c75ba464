// s3rver as its own process (not in the bench process, so its CPU and memory are not the bench's),
// on a free port of 127.0.0.1 with the given buckets created at start. It needs
// --openssl-legacy-provider on Node 20 and 24 alike: s3rver encrypts its listings' continuation
// tokens with DES, which OpenSSL 3 keeps in the legacy provider (without it, every paginated
// ListObjectsV2 answers 500).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as http from 'node:http';
import * as net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export interface S3rverProcess {
  endpoint: string;
  pid: number;
  /** CPU seconds (user + system) the server has used so far, from /proc/<pid>/stat. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** Clock ticks per second of /proc/<pid>/stat times: 100 on Linux (USER_HZ) on every mainstream arch. */
const USER_HZ = 100;

function procCpuSeconds(pid: number): number {
  try {
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return Number.NaN;
  }
}

const S3RVER_CLI = join(
  dirname(createRequire(import.meta.url).resolve('s3rver/package.json')),
  'bin',
  's3rver.js',
);

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A bucket per round for loft, for the peer (nix-N) and for a --baseline build (base-N). */
export function roundBuckets(rounds: number): string[] {
  return Array.from({ length: rounds }, (_, i) => [`loft-${i + 1}`, `nix-${i + 1}`, `base-${i + 1}`]).flat();
}

/**
 * Imported first when the server is profiled: the CLI has no SIGTERM handler, and Node writes a
 * `--cpu-prof` profile only when the process exits by itself, never when a signal kills it.
 */
const EXIT_ON_SIGTERM = fileURLToPath(new URL('./exit-on-sigterm.ts', import.meta.url));

/**
 * `cpuProfileDir`: run the server under `--cpu-prof`, its profile written into that directory when
 * stop() ends it (read it with bench/lib/cpu-profile-summary.ts).
 */
export async function startS3rverProcess(
  directory: string,
  buckets: string[],
  cpuProfileDir?: string,
): Promise<S3rverProcess> {
  const port = await freePort();
  const bucketArgs = buckets.flatMap((b) => ['--configure-bucket', b]);
  const profile =
    cpuProfileDir === undefined
      ? []
      : ['--import', EXIT_ON_SIGTERM, '--cpu-prof', '--cpu-prof-dir', cpuProfileDir];
  const child = spawn(
    process.execPath,
    [
      '--openssl-legacy-provider',
      ...profile,
      S3RVER_CLI,
      '-d',
      directory,
      '-a',
      '127.0.0.1',
      '-p',
      String(port),
      '--silent',
      ...bucketArgs,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const endpoint = `http://127.0.0.1:${port}`;
  const stop = () => stopChild(child);
  try {
    await waitUntilAnswering(endpoint, child, () => stderr);
  } catch (err) {
    await stop();
    throw err;
  }
  const pid = child.pid!;
  return { endpoint, pid, cpuSeconds: () => procCpuSeconds(pid), stop };
}

async function waitUntilAnswering(
  endpoint: string,
  child: ChildProcess,
  stderr: () => string,
): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`s3rver exited with ${child.exitCode}: ${stderr()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get(endpoint, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`s3rver did not answer on ${endpoint} within 10 s: ${stderr()}`);
}

/** SIGTERM to our own child by pid, SIGKILL if it lingers. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
