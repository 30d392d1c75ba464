// Daemon benchmark. Part 1: the store watcher alone on a directory of 100,000 entries (a stand-in
// for a big /nix/store): time to ready, RSS, latency of one new entry, a burst of 500, and one
// reconciliation listing. Part 2: the built daemon against s3rver (own process) and a PRIVATE Nix
// store: idle RSS, latency from a path becoming valid (nix-build returned) to its narinfo being
// served, and a burst of 500 builds. Part 3: a second daemon's first start on that store plus
// thousands of text files (the initial scan's backlog), and 10 builds made while it drains: the time
// until all 10 are served, and the scanned paths still waiting at that moment (`--status`).
//   node --import tsx bench/daemon.bench.ts [--entries 100000] [--burst 500] [--latency-runs 5]
//     [--scan-paths 5000]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { encodeNixBase32 } from '../src/format/nix-base32.js';
import { StoreWatcher } from '../src/store/store-watcher.js';
import { logLines } from '../test/helpers/loft-cli.js';
import { nixBin, nixEnv } from '../test/helpers/nix-env.js';
import { LOFT_MAIN, generateSigningKey, writeLoftConfig } from './lib/loft-runs.js';
import { startS3rverProcess } from './lib/s3rver-process.js';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '100000' },
    burst: { type: 'string', default: '500' },
    'latency-runs': { type: 'string', default: '5' },
    'scan-paths': { type: 'string', default: '5000' },
  },
});
const ENTRIES = Number(values.entries);
const BURST = Number(values.burst);
const RUNS = Number(values['latency-runs']);
const SCAN_PATHS = Number(values['scan-paths']);
const NEW_BUILDS = 10;

const root = mkdtempSync(join(tmpdir(), 'loft-daemon-bench-'));
chmodSync(root, 0o755); // Nix's build users must reach the private store inside
process.env.NIX_STORE_DIR = join(root, 'nix', 'store');
process.env.NIX_STATE_DIR = join(root, 'nix', 'state');
process.env.NIX_LOG_DIR = join(root, 'nix', 'log');
// No build users: the private store has its own user-pool locks, so its builds would share nixbld1
// with builds in /nix/store running at the same time, and Nix kills every process of a build user
// when a build starts (seen here: builders "failed due to signal 9").
process.env.NIX_CONFIG = `build-users-group =\n${process.env.NIX_CONFIG ?? ''}`;

const rows: Array<[string, string]> = [];
const row = (what: string, value: string) => {
  rows.push([what, value]);
  console.error(`${what}: ${value}`);
};
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MB`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const entryName = (tag: string) => `${encodeNixBase32(randomBytes(20))}-${tag}`;

async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  stepMs = 5,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(stepMs);
  }
  return false;
}

async function watcherPart(): Promise<void> {
  const dir = join(root, 'fake-store');
  mkdirSync(dir);
  for (let i = 0; i < ENTRIES; i++) mkdirSync(join(dir, entryName(`e${i}`)));
  const seen = new Set<string>();
  const w = new StoreWatcher({
    storeDir: dir,
    uploadDerivations: false,
    onPaths: (ps) => ps.forEach((p) => seen.add(p)),
  });
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  await w.start();
  row(`watcher ready on ${ENTRIES} entries`, `${(performance.now() - t0).toFixed(0)} ms`);
  row(
    'watcher RSS (whole bench process; growth at start)',
    `${mb(process.memoryUsage().rss)} (+${mb(process.memoryUsage().rss - rssBefore)})`,
  );
  const latencies: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const p = join(dir, entryName(`new${i}`));
    const t = performance.now();
    mkdirSync(p);
    await waitFor(() => seen.has(p), 10_000, 1);
    latencies.push(performance.now() - t);
  }
  row(
    'one new entry reported after (median; 200 ms quiet window included)',
    `${median(latencies).toFixed(0)} ms`,
  );
  const burst = Array.from({ length: BURST }, (_, i) => join(dir, entryName(`burst${i}`)));
  const tb = performance.now();
  for (const p of burst) mkdirSync(p);
  await waitFor(() => burst.every((p) => seen.has(p)), 30_000);
  row(
    `burst of ${BURST} entries`,
    `${burst.filter((p) => seen.has(p)).length}/${BURST} reported, all after ${(performance.now() - tb).toFixed(0)} ms`,
  );
  const tr = performance.now();
  await w.reconcile();
  row(
    `one reconciliation listing of ${ENTRIES + RUNS + BURST} entries`,
    `${(performance.now() - tr).toFixed(0)} ms`,
  );
  await w.stop();
  rmSync(dir, { recursive: true, force: true });
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

async function startDaemon(config: string): Promise<{ child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, [LOFT_MAIN, '-c', config], {
    env: nixEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const ok = await waitFor(
    () => logLines(err).some((l) => l.msg === 'daemon started, watching the store'),
    20_000,
    20,
  );
  if (!ok) throw new Error(`daemon did not start: ${err}`);
  return { child, stderr: () => err };
}

function derivationsExpr(salt: string, n: number): string {
  return `builtins.genList (i: derivation { name = "bench-d-\${toString i}"; system = builtins.currentSystem; builder = "/bin/sh"; salt = "${salt}"; args = [ "-c" "echo \${toString i} > $out" ]; }) ${n}`;
}

async function daemonPart(): Promise<void> {
  const s3 = await startS3rverProcess(join(root, 's3'), ['bench', 'backlog']);
  mkdirSync(join(root, 's3'), { recursive: true });
  const keyPath = join(root, 'key.sec');
  generateSigningKey(keyPath);
  const config = writeLoftConfig(
    join(root, 'loft'),
    { s3: { endpoint: s3.endpoint, bucket: 'bench' } },
    keyPath,
    {
      loftLines: ['scan_on_startup = false', 'upload_threads = 8'],
    },
  );
  await nixBin(['nix', 'path-info', '--all']); // creates the private store before the daemon watches it
  const daemon = await startDaemon(config).catch(async (err: unknown) => {
    await s3.stop();
    throw err;
  });
  try {
    await sleep(2000);
    row('daemon idle RSS', mb(rssOf(daemon.child.pid!)));
    const narinfo = async (path: string) => {
      const hash = path.split('/').pop()!.slice(0, 32);
      const res = await fetch(`${s3.endpoint}/bench/${hash}.narinfo`, { method: 'HEAD' });
      return res.status === 200;
    };
    const latencies: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const { stdout } = await nixBin([
        'nix-build',
        '--no-out-link',
        '-E',
        `builtins.head (${derivationsExpr(randomBytes(6).toString('hex'), 1)})`,
      ]);
      const t = performance.now();
      await waitFor(() => narinfo(stdout.trim()), 30_000, 10);
      latencies.push(performance.now() - t);
    }
    row(
      'new valid path -> narinfo served (median)',
      `${median(latencies).toFixed(0)} ms (all: ${latencies.map((l) => l.toFixed(0)).join(', ')})`,
    );
    const salt = randomBytes(6).toString('hex');
    const t0 = performance.now();
    const { stdout } = await nixBin(['nix-build', '--no-out-link', '-E', derivationsExpr(salt, BURST)]).catch(
      (err: { stderr?: string }) => {
        throw new Error(
          `nix-build failed: ${(err.stderr ?? '')
            .split('\n')
            .filter((l) => l.startsWith('error'))
            .join(' | ')}`,
        );
      },
    );
    const built = performance.now();
    const paths = stdout.trim().split('\n');
    let left = paths;
    await waitFor(
      async () => {
        const present = await Promise.all(left.map(narinfo));
        left = left.filter((_, i) => !present[i]);
        return left.length === 0;
      },
      120_000,
      200,
    );
    const done = performance.now();
    row(
      `burst of ${BURST} builds (one nix-build)`,
      `${paths.length - left.length}/${paths.length} uploaded; built in ${((built - t0) / 1000).toFixed(1)} s, all served ${((done - t0) / 1000).toFixed(1)} s after the build began (${((done - built) / 1000).toFixed(1)} s after it ended)`,
    );
    row('daemon RSS after the burst', mb(rssOf(daemon.child.pid!)));
  } finally {
    await stopDaemon(daemon.child);
  }
  try {
    await backlogPart(s3.endpoint, keyPath);
  } finally {
    await s3.stop();
  }
}

async function stopDaemon(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('close', resolve));
}

/**
 * A first start on the store of part 2 plus SCAN_PATHS text files, into a bucket of its own: the
 * initial scan queues them all, then NEW_BUILDS builds are made and timed to their narinfos.
 */
async function backlogPart(endpoint: string, keyPath: string): Promise<void> {
  const file = join(root, 'scanned.nix');
  writeFileSync(
    file,
    `{ salt, n }: builtins.genList (i: builtins.toFile "scanned-\${toString i}" "\${salt} \${toString i}\\n") n\n`,
  );
  // Written by evaluation, without an fsync per path: seconds, not minutes, for thousands.
  const env = { ...nixEnv(), NIX_CONFIG: `fsync-metadata = false\n${process.env.NIX_CONFIG ?? ''}` };
  const salt = randomBytes(6).toString('hex');
  const args = ['--argstr', 'salt', salt, '--arg', 'n', String(SCAN_PATHS)];
  await nixBin(['nix-instantiate', '--read-write-mode', '--eval', '--strict', file, ...args], env);
  const config = writeLoftConfig(
    join(root, 'loft-backlog'),
    { s3: { endpoint, bucket: 'backlog' } },
    keyPath,
    {
      loftLines: ['scan_on_startup = true', 'upload_threads = 8'],
    },
  );
  const daemon = await startDaemon(config);
  try {
    const scanned = await waitFor(
      () => logLines(daemon.stderr()).some((l) => l.msg === 'initial scan queued the store'),
      60_000,
      20,
    );
    if (!scanned) throw new Error(`no initial scan: ${daemon.stderr()}`);
    const queued = logLines(daemon.stderr()).find((l) => l.msg === 'initial scan queued the store')!.paths;
    const { stdout } = await nixBin([
      'nix-build',
      '--no-out-link',
      '-E',
      derivationsExpr(randomBytes(6).toString('hex'), NEW_BUILDS),
    ]);
    const t0 = performance.now();
    const served = async (path: string) => {
      const hash = path.split('/').pop()!.slice(0, 32);
      return (await fetch(`${endpoint}/backlog/${hash}.narinfo`, { method: 'HEAD' })).status === 200;
    };
    let left = stdout.trim().split('\n');
    await waitFor(
      async () => {
        const present = await Promise.all(left.map(served));
        left = left.filter((_, i) => !present[i]);
        return left.length === 0;
      },
      300_000,
      20,
    );
    const ms = performance.now() - t0;
    const status = execFileSync(process.execPath, [LOFT_MAIN, '-c', config, '--status'], {
      encoding: 'utf8',
    });
    const backlog = /store scan backlog: (\d+)/.exec(status)?.[1] ?? '?';
    row(
      `${NEW_BUILDS} builds during the initial scan of ${String(queued)} paths`,
      `${NEW_BUILDS - left.length}/${NEW_BUILDS} served ${ms.toFixed(0)} ms after nix-build returned; scan backlog still waiting then: ${backlog}`,
    );
  } finally {
    await stopDaemon(daemon.child);
  }
}

try {
  await watcherPart();
  await daemonPart();
  console.log('| measure | value |\n|---|---|');
  for (const [what, value] of rows) console.log(`| ${what} | ${value} |`);
} finally {
  execFileSync('chmod', ['-R', 'u+w', root]);
  rmSync(root, { recursive: true, force: true });
}
