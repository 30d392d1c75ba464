// The daemon idle after the initial scan of a large store (issue 27's bar: <= 80 MB with default
// settings). A private Nix store of --entries valid paths (bench/lib/filled-store.ts), a target
// (see --target), and the built CLI started as a daemon with the defaults (scan_on_startup on): the
// scan queues every path, the worker uploads them all, and once the queue is empty the daemon's
// RSS is sampled for --idle-seconds (loft gives its pools back after 5 s idle). Printed: the
// scan's and the drain's wall and CPU seconds, RSS when the queue emptied, RSS at the end of the
// idle time, and the peak: VmHWM, or the largest RSS sampled (every 250 ms) when that is larger,
// since an execve (the daemon's fresh start, src/cli/fresh-start.ts) starts VmHWM again.
// With --loft-main given more than once, each built CLI runs in turn on the same store, each into
// a bucket and state file of its own (before/after a change, side by side in one run).
// The default target is a `[local]` directory, so that `npm run bench` ends in minutes: with
// --target s3 (s3rver) the drain of 100,000 paths takes over 20 minutes, because s3rver answers
// each prefix listing by reading its bucket's whole folder (use --entries 20000 there).
//   node --import tsx bench/scan-idle.bench.ts [--entries 100000] [--idle-seconds 30] [--target local|s3]
//     [--drain-timeout 3600] [--scan-only] [--loft-main dist/cli/main.js ...] [--node-args "--heapsnapshot-signal=SIGUSR2"]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { fillStore, usePrivateStore } from './lib/filled-store.js';
import { LOFT_MAIN, generateSigningKey, loftCommand, writeLoftConfig } from './lib/loft-runs.js';
import { procCpuSeconds, procMemory } from './lib/proc-stats.js';
import { startS3rverProcess } from './lib/s3rver-process.js';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '100000' },
    'idle-seconds': { type: 'string', default: '30' },
    'drain-timeout': { type: 'string', default: '3600' },
    'loft-main': { type: 'string', multiple: true },
    'node-args': { type: 'string', default: '' },
    // Only the scan: stop each daemon once it has queued the store (no drain, no idle figures).
    'scan-only': { type: 'boolean', default: false },
    target: { type: 'string', default: 'local' },
  },
});
const ENTRIES = Number(values.entries);
const IDLE_MS = Number(values['idle-seconds']) * 1000;
const DRAIN_TIMEOUT_MS = Number(values['drain-timeout']) * 1000;
const MAINS = (values['loft-main'] ?? [LOFT_MAIN]).map((m) => resolve(m));
const NODE_ARGS = values['node-args'].split(' ').filter((a) => a !== '');
const SCAN_ONLY = values['scan-only'];
const SAMPLE_MS = 250;
const LOCAL = values.target === 'local';
if (!LOCAL && values.target !== 's3') throw new Error(`--target is local or s3, not ${values.target}`);

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;
const s = (seconds: number) => `${seconds.toFixed(1)} s`;

interface Sample {
  at: number;
  rss: number;
}

interface VariantResult {
  main: string;
  scanSeconds: number;
  scanCpu: number;
  drainSeconds: number;
  drainCpu: number;
  uploaded: number;
  rssDrained: number;
  rssIdle: number;
  rssIdleMin: number;
  anonIdle: number;
  fileIdle: number;
  idleCpu: number;
  hwm: number;
  exitCode: number | null;
}

/** The daemon's JSON log lines, read as they come; only the ones asked about are kept. */
class LogWatch {
  readonly seen = new Map<string, { at: number; line: Record<string, unknown> }>();
  uploaded = 0;
  tail = '';
  private partial = '';

  constructor(
    child: ChildProcess,
    private readonly wanted: string[],
  ) {
    child.stderr!.on('data', (c: Buffer) => this.take(c.toString()));
  }

  private take(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop()!;
    for (const l of lines) {
      this.tail = (this.tail + l + '\n').slice(-4000);
      if (!l.startsWith('{')) continue;
      const line = JSON.parse(l) as Record<string, unknown>;
      const msg = String(line['msg']);
      if (msg === 'uploaded') this.uploaded++;
      else if (this.wanted.includes(msg) && !this.seen.has(msg))
        this.seen.set(msg, { at: performance.now(), line });
    }
  }
}

const STARTED = 'daemon started, watching the store';
const SCAN_BEGUN = 'initial scan: queueing every valid store path';
const SCAN_DONE = 'initial scan queued the store';

async function until(cond: () => boolean, timeoutMs: number, what: string, log: LogWatch): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; daemon stderr:\n${log.tail}`);
    await sleep(100);
  }
}

async function runVariant(
  main: string,
  dir: string,
  endpoint: string,
  bucket: string,
  keyPath: string,
  env: NodeJS.ProcessEnv,
): Promise<VariantResult | undefined> {
  const target = LOCAL ? { localDir: join(dir, 'cache') } : { s3: { endpoint, bucket } };
  const config = writeLoftConfig(dir, target, keyPath);
  // As a user's launcher starts the daemon (its shebang's allocator settings), unless --node-args.
  const how = loftCommand(main, NODE_ARGS, env);
  const child = spawn(how.cmd, [...how.args, '-c', config], {
    env: how.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log = new LogWatch(child, [STARTED, SCAN_BEGUN, SCAN_DONE]);
  const pid = child.pid!;
  const samples: Sample[] = [];
  const sampler = setInterval(() => {
    if (child.exitCode === null) samples.push({ at: performance.now(), rss: procMemory(pid).rssBytes });
  }, SAMPLE_MS);
  try {
    await until(() => log.seen.has(SCAN_DONE) || child.exitCode !== null, 120_000, 'the scan', log);
    if (child.exitCode !== null) throw new Error(`daemon exited ${child.exitCode}:\n${log.tail}`);
    const scanBegun = log.seen.get(SCAN_BEGUN)!.at;
    const scanDone = log.seen.get(SCAN_DONE)!.at;
    const scanCpu = procCpuSeconds(pid);
    if (SCAN_ONLY) {
      console.error(
        `scan of ${ENTRIES} paths: ${s((scanDone - scanBegun) / 1000)} wall, daemon CPU since its start ` +
          `${s(scanCpu)}, RSS then ${mb(procMemory(pid).rssBytes)}, peak ${mb(procMemory(pid).hwmBytes)}`,
      );
      return undefined;
    }
    // The queue, read beside the daemon (WAL lets a reader in while it writes).
    const db = new Database(join(dir, 'cache.db'), { readonly: true, fileMustExist: true });
    const pending = db.prepare(`SELECT count(*) FROM queue WHERE state = 'pending'`).pluck();
    let drained = 0;
    try {
      await until(
        () => {
          if ((pending.get() as number) > 0) return false;
          drained = performance.now();
          return true;
        },
        DRAIN_TIMEOUT_MS,
        'the queue to drain',
        log,
      );
    } finally {
      db.close();
    }
    const drainCpu = procCpuSeconds(pid) - scanCpu;
    const rssDrained = procMemory(pid).rssBytes;
    await sleep(IDLE_MS);
    const idleCpu = procCpuSeconds(pid) - scanCpu - drainCpu;
    const { rssBytes: rssIdle, hwmBytes: hwm, rssAnonBytes, rssFileBytes } = procMemory(pid);
    const lastTen = samples.filter((x) => x.at >= performance.now() - 10_000).map((x) => x.rss);
    clearInterval(sampler);
    child.kill('SIGTERM');
    const exitCode = await new Promise<number | null>((res) => {
      if (child.exitCode !== null) res(child.exitCode);
      else child.once('close', res);
    });
    return {
      main,
      scanSeconds: (scanDone - scanBegun) / 1000,
      scanCpu,
      drainSeconds: (drained - scanDone) / 1000,
      drainCpu,
      uploaded: log.uploaded,
      rssDrained,
      rssIdle,
      rssIdleMin: Math.min(...lastTen),
      anonIdle: rssAnonBytes,
      fileIdle: rssFileBytes,
      idleCpu,
      hwm: Math.max(hwm, ...samples.map((x) => x.rss)),
      exitCode,
    };
  } finally {
    clearInterval(sampler);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

const root = mkdtempSync(join(tmpdir(), 'loft-scan-idle-bench-'));
try {
  const { storeDir } = usePrivateStore(root);
  const store = fillStore(storeDir, ENTRIES);
  console.error(`store of ${ENTRIES} valid paths made in ${s(store.seconds)}`);
  const buckets = MAINS.map((_, i) => `idle-${i}`);
  const s3 = LOCAL ? undefined : await startS3rverProcess(join(root, 's3'), buckets);
  const keyPath = join(root, 'key.sec');
  generateSigningKey(keyPath);
  const results: VariantResult[] = [];
  try {
    for (const [i, main] of MAINS.entries()) {
      const dir = join(root, `loft-${i}`);
      mkdirSync(dir);
      const r = await runVariant(main, dir, s3?.endpoint ?? '', buckets[i]!, keyPath, store.env);
      if (r) console.error(JSON.stringify(r));
      if (r) results.push(r);
    }
  } finally {
    await s3?.stop();
  }
  if (results.length > 0) printTable(results, store.seconds);
} finally {
  rmSync(root, { recursive: true, force: true });
}

function printTable(results: VariantResult[], storeSeconds: number): void {
  console.log(
    `Store of ${ENTRIES} valid paths (made in ${s(storeSeconds)}), to ${LOCAL ? '[local]' : 's3rver'}; idle sampled ${IDLE_MS / 1000} s.`,
  );
  const started =
    NODE_ARGS.length > 0 ? `node ${NODE_ARGS.join(' ')} main.js` : 'main.js as a program (its shebang)';
  console.log(`Daemon started as ${started}.\n`);
  console.log(
    '| loft | scan (wall / CPU) | drain: uploaded, wall / CPU | RSS queue empty | RSS idle (end / min of last 10 s) | of which anon / file | idle CPU | peak | exit |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(
      `| ${relative(process.cwd(), r.main)} | ${s(r.scanSeconds)} / ${s(r.scanCpu)} | ${r.uploaded}, ${s(r.drainSeconds)} / ${s(r.drainCpu)} | ` +
        `${mb(r.rssDrained)} | ${mb(r.rssIdle)} / ${mb(r.rssIdleMin)} | ${mb(r.anonIdle)} / ${mb(r.fileIdle)} | ${r.idleCpu.toFixed(2)} s | ${mb(r.hwm)} | ${String(r.exitCode)} |`,
    );
  }
}
