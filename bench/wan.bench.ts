// Uploading over a wide-area link: S3 (s3rver, its own process) behind test/helpers/link-proxy.ts,
// which adds a round trip, a TCP handshake and a bandwidth shared per direction (this kernel has no
// netem). Side by side in one run, medians of `--rounds`, wall time with CPU seconds (user + sys):
//   A. loft --upload-path ROOT into an empty bucket
//   B. nix copy --to file://DIR?compression=zstd, then `aws s3 sync DIR s3://BUCKET` (the peer)
//   C. loft again with empty local state (its SQLite state deleted): the bucket has everything
//   D. the peer again: nix copy to a fresh DIR, then `aws s3 sync --size-only` (it compares its
//      files against the bucket's listing; without --size-only the fresh files' newer mtimes make
//      it upload everything again)
// after one untimed fresh push that warms the server up, and the link's floor beside them: the
// compressed bytes stored at the link's rate, plus Node's start (`node dist/cli/main.js --version`). The closure is CI-shaped (about 400 paths, 86 MiB
// compressed), built on demand from bench/fixtures/upload-closure.nix and deleted at the end.
//   npm run build && node --openssl-legacy-provider --import tsx bench/wan.bench.ts [--rounds 3]
//     [--rtt 40] [--mbit 100] [--salt S --keep] [--baseline OTHER/dist/cli/main.js]
// (`npm run bench -- wan` runs it with the defaults.)
// Bars (issue 27): A <= 1.1 x (floor + Node's start); C <= 0.8 s.
// Without the aws CLI the peer's fresh push uses bench/lib/s3-sync.ts and D is not measured.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startLinkProxy, type LinkProxy } from '../test/helpers/link-proxy.js';
import { randomSalt } from '../test/helpers/fixtures.js';
import { logLines } from '../test/helpers/loft-cli.js';
import { nixEnv } from '../test/helpers/nix-env.js';
import { buildBenchClosure, deleteWithDerivers, warmPageCache } from './lib/bench-closure.js';
import {
  LOFT_MAIN,
  generateSigningKey,
  runLoftUpload,
  runNixCopy,
  writeLoftConfig,
  type LoftRun,
} from './lib/loft-runs.js';
import { countByOperation, startRequestCounter, waves, type RequestCounter } from './lib/request-counter.js';
import { roundBuckets, startS3rverProcess, type S3rverProcess } from './lib/s3rver-process.js';
import { beside, combined, median, runTimed, type TimedRun } from './lib/timed-command.js';

const SYNC = fileURLToPath(new URL('./lib/s3-sync.ts', import.meta.url));
const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    rtt: { type: 'string', default: '40' },
    mbit: { type: 'string', default: '100' },
    salt: { type: 'string' },
    /** Another build's dist/cli/main.js, run beside this one in every round (before/after). */
    baseline: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const rounds = Number(opt.rounds);
const rttMs = Number(opt.rtt);
const mbit = Number(opt.mbit);
// 4 layers of 97 small paths (16 random and 12 text files each), 4 random paths of 8 MiB and 8 text
// paths of 4 MiB, one root: 401 paths, about 86 MiB once compressed with zstd.
const CI_CLOSURE = [
  ...['--arg', 'layers', '4', '--arg', 'perLayer', '97', '--arg', 'randomFiles', '16'],
  ...['--arg', 'textFiles', '12', '--arg', 'randomBigMb', '8', '--arg', 'textBigMb', '4'],
];

const WARM_UP_BUCKET = 'warm-up';
const rows: string[] = [];
const row = (what: string, value: string, bar = ''): void =>
  void rows.push(`| ${what} | ${value} | ${bar} |`);
const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISSED');
const wall = (runs: TimedRun[]): number => median(runs.map((r) => r.seconds));
const cpu = (runs: TimedRun[]): number => median(runs.map((r) => r.cpuSeconds));
const describe = (runs: TimedRun[]): string =>
  `${wall(runs).toFixed(2)} s (${runs.map((r) => r.seconds.toFixed(2)).join(', ')}), CPU ${cpu(runs).toFixed(2)} s`;

function awsCli(): string | undefined {
  try {
    execFileSync('aws', ['--version'], { stdio: 'ignore' });
    return 'aws';
  } catch {
    return undefined;
  }
}

function awsEnv(tmp: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: join(tmp, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(tmp, 'no-aws-credentials'),
    // Newer botocore sends aws-chunked bodies with a CRC trailer, which s3rver stores as data.
    AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
  };
}

interface Ctx {
  tmp: string;
  keyPath: string;
  root: string;
  link: LinkProxy;
  counter: RequestCounter;
  aws: string | undefined;
}

/** What crossed the link during one run: requests by kind, waves of requests, connections. */
function traffic(ctx: Ctx, before: number, busy = ''): string {
  const reqs = ctx.counter.take();
  return (
    `${reqs.length} requests (${countByOperation(reqs)}), ~${waves(reqs, rttMs)} round trips in series, ` +
    `${ctx.link.connections() - before} connections${busy}`
  );
}

/**
 * Samples the bytes sent up the link every 100 ms while `run` goes on: when the first MiB had left,
 * and the share of the samples after it in which the link carried at least 80 % of its rate.
 */
async function sampled<T>(link: LinkProxy, run: () => Promise<T>): Promise<[T, string]> {
  const perSample = (mbit * 1e6) / 8 / 10;
  const start = performance.now();
  const first = link.bytes().up;
  let last = first;
  let firstMiB: number | undefined;
  let busy = 0;
  let samples = 0;
  const timer = setInterval(() => {
    const now = link.bytes().up;
    if (firstMiB === undefined && now - first >= 2 ** 20) firstMiB = performance.now() - start;
    else if (firstMiB !== undefined) {
      samples++;
      if (now - last >= 0.8 * perSample) busy++;
    }
    last = now;
  }, 100);
  try {
    const result = await run();
    const share = samples === 0 ? 0 : (100 * busy) / samples;
    const note =
      firstMiB === undefined
        ? ''
        : `; first MiB up after ${(firstMiB / 1000).toFixed(2)} s, link >= 80 % busy in ${share.toFixed(0)} % of the rest`;
    return [result, note];
  } finally {
    clearInterval(timer);
  }
}

async function peerSync(ctx: Ctx, dir: string, bucket: string, again: boolean): Promise<TimedRun> {
  if (ctx.aws === undefined) return await runTimed(process.execPath, [SYNC, dir, ctx.link.endpoint, bucket]);
  const args = ['s3', 'sync', '--quiet', '--endpoint-url', ctx.link.endpoint, dir, `s3://${bucket}`];
  return await runTimed(ctx.aws, again ? [...args, '--size-only'] : args, { env: awsEnv(ctx.tmp) });
}

/** loft from another build (--baseline): the same run as runLoftUpload, with that build's CLI. */
async function runOtherLoft(main: string, config: string, root: string): Promise<LoftRun> {
  const run = await runTimed(process.execPath, [main, '-c', config, '--upload-path', root], {
    env: nixEnv(),
  });
  const uploaded = logLines(run.stderr).filter((l) => l['msg'] === 'uploaded');
  const fileBytes = uploaded.reduce((n, l) => n + Number(l['fileSize'] ?? 0), 0);
  return { ...run, uploaded: uploaded.length, narBytes: 0, fileBytes };
}

/**
 * Writes dirty pages out before a timed run. Without it the first loft of each round ran while the
 * kernel wrote back what the run before it stored (the peer's `nix copy` directory, s3rver's
 * objects, the closure's build): about a second slower than the baseline run after it, every round.
 */
function settleDisk(): void {
  execFileSync('sync', { stdio: 'ignore' });
}

/** Fresh push then re-push with empty local state, into `bucket`, with loft of `main` (or this build's). */
async function loftPair(ctx: Ctx, bucket: string, label: string, notes: string[], main?: string) {
  const dir = join(ctx.tmp, bucket);
  const config = writeLoftConfig(dir, { s3: { endpoint: ctx.link.endpoint, bucket } }, ctx.keyPath);
  const run = () => {
    settleDisk();
    return main === undefined ? runLoftUpload(config, ctx.root) : runOtherLoft(main, config, ctx.root);
  };
  ctx.counter.take();
  let conns = ctx.link.connections();
  const [fresh, busy] = await sampled(ctx.link, run);
  notes.push(`${label} fresh: ${traffic(ctx, conns, busy)}`);
  for (const f of ['cache.db', 'cache.db-wal', 'cache.db-shm']) rmSync(join(dir, f), { force: true });
  conns = ctx.link.connections();
  const again = await run();
  if (again.uploaded !== 0) throw new Error(`the re-push uploaded ${again.uploaded} paths`);
  notes.push(`${label} re-push: ${traffic(ctx, conns)}`);
  return { fresh, again };
}

/**
 * One untimed fresh push before the rounds: the first run against a fresh s3rver process (its code
 * not yet optimized, its files not yet cached) was the slowest of every bench, whichever build
 * made it, and round 1 always starts with this build.
 */
async function warmUp(ctx: Ctx): Promise<void> {
  const dir = join(ctx.tmp, WARM_UP_BUCKET);
  const config = writeLoftConfig(
    dir,
    { s3: { endpoint: ctx.link.endpoint, bucket: WARM_UP_BUCKET } },
    ctx.keyPath,
  );
  await runLoftUpload(config, ctx.root);
  ctx.counter.take();
}

async function allRounds(ctx: Ctx): Promise<LoftRun[]> {
  const runs = {
    a: [] as LoftRun[],
    b: [] as TimedRun[],
    c: [] as LoftRun[],
    d: [] as TimedRun[],
    baseA: [] as LoftRun[],
    baseC: [] as LoftRun[],
  };
  const notes: string[] = [];
  await warmUp(ctx);
  for (let i = 1; i <= rounds; i++) {
    const ours = await loftPair(ctx, `loft-${i}`, `A/C${i}`, notes);
    runs.a.push(ours.fresh);
    runs.c.push(ours.again);
    if (opt.baseline !== undefined) {
      const base = await loftPair(ctx, `base-${i}`, `baseline ${i}`, notes, opt.baseline);
      runs.baseA.push(base.fresh);
      runs.baseC.push(base.again);
    }

    const nixDir = join(ctx.tmp, `nix-${i}`);
    settleDisk();
    const copy = await runNixCopy(nixDir, ctx.root, ctx.keyPath);
    let conns = ctx.link.connections();
    const [sync, busyB] = await sampled(ctx.link, () => peerSync(ctx, nixDir, `nix-${i}`, false));
    runs.b.push(combined(copy, sync));
    notes.push(`B${i}: ${traffic(ctx, conns, busyB)}`);
    rmSync(nixDir, { recursive: true, force: true });
    if (ctx.aws !== undefined) {
      settleDisk();
      const copyAgain = await runNixCopy(nixDir, ctx.root, ctx.keyPath);
      conns = ctx.link.connections();
      runs.d.push(combined(copyAgain, await peerSync(ctx, nixDir, `nix-${i}`, true)));
      notes.push(`D${i}: ${traffic(ctx, conns)}`);
      rmSync(nixDir, { recursive: true, force: true });
    }
  }
  const start = await nodeStart();
  const bytes = median(runs.a.map((r) => r.fileBytes));
  const floor = (bytes * 8) / (mbit * 1e6);
  row(
    'link floor: compressed bytes / bandwidth',
    `${(bytes / 2 ** 20).toFixed(1)} MiB -> ${floor.toFixed(2)} s`,
  );
  row("Node's start (`node dist/cli/main.js --version`)", `${start.toFixed(2)} s`);
  const ratio = wall(runs.a) / (floor + start);
  row(
    'A. loft, fresh (empty bucket)',
    describe(runs.a),
    `<= 1.1 x floor + start: ${beside(ratio, 1.1)}x ${verdict(ratio <= 1.1)}`,
  );
  const peer = ctx.aws === undefined ? 'bench/lib/s3-sync.ts' : 'aws s3 sync';
  row(
    `B. nix copy --to file://DIR?compression=zstd + ${peer}, fresh`,
    describe(runs.b),
    `${(wall(runs.b) / (floor + start)).toFixed(2)}x floor + start`,
  );
  row('A / B (wall)', (wall(runs.a) / wall(runs.b)).toFixed(2));
  row('C. loft re-push, empty local state', describe(runs.c), `<= 0.8 s ${verdict(wall(runs.c) <= 0.8)}`);
  if (runs.d.length > 0) {
    row('D. nix copy to a fresh DIR + aws s3 sync --size-only (re-push)', describe(runs.d));
    row('C / D (wall)', (wall(runs.c) / wall(runs.d)).toFixed(2));
  }
  if (runs.baseA.length > 0) {
    row(
      'A0. baseline loft (--baseline), fresh',
      describe(runs.baseA),
      `${(wall(runs.baseA) / (floor + start)).toFixed(2)}x floor + start`,
    );
    row('C0. baseline loft, re-push with empty local state', describe(runs.baseC));
  }
  rows.push('', 'Traffic per run:', ...notes.map((n) => `- ${n}`));
  return runs.a;
}

async function nodeStart(): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) runs.push((await runTimed(process.execPath, [LOFT_MAIN, '--version'])).seconds);
  return median(runs);
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'loft-wan-bench-'));
  const toDelete: string[] = [];
  let s3: S3rverProcess | undefined;
  let link: LinkProxy | undefined;
  let counter: RequestCounter | undefined;
  try {
    row('machine', `${availableParallelism()} cores, load average at start ${loadavg()[0]!.toFixed(2)}`);
    row('link', `${rttMs} ms round trip, ${mbit} Mbit/s each way (test/helpers/link-proxy.ts)`);
    const closure = await buildBenchClosure(opt.salt ?? randomSalt(), CI_CLOSURE);
    if (!opt.keep) toDelete.push(...[...closure.paths].reverse());
    row('closure', `${closure.narSizes.size} paths, NAR ${(closure.narTotal / 2 ** 20).toFixed(0)} MiB`);
    const keyPath = join(tmp, 'signing-key');
    generateSigningKey(keyPath);
    s3 = await startS3rverProcess(join(tmp, 's3rver'), [...roundBuckets(rounds), WARM_UP_BUCKET]);
    counter = await startRequestCounter(s3.endpoint);
    link = await startLinkProxy({ target: counter.endpoint, rttMs, mbitPerSecond: mbit });
    await warmPageCache(closure.paths);
    await allRounds({ tmp, keyPath, root: closure.root, link, counter, aws: awsCli() });
  } finally {
    console.log(
      `\nWide-area benchmark (${rounds} rounds, medians)\n\n| measure | value | bar |\n|---|---|---|`,
    );
    console.log(rows.join('\n'));
    await link?.close();
    await counter?.close();
    await s3?.stop();
    const left = await deleteWithDerivers(toDelete);
    if (left.length > 0) console.error(`could not delete ${left.length} store paths, e.g. ${left[0]}`);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
