// The upload pipeline against what users would do otherwise, side by side in one run, medians of
// `--rounds`, each with wall time, CPU seconds (user + sys, of the command and its children) and
// peak RSS:
//   A. loft -> [local] directory            vs  B. nix copy --to file://DIR?compression=zstd
//   C. loft -> s3rver (own process)         vs  D. nix copy --to file://DIR + a sync of DIR to
//                                                   the same s3rver (bench/lib/s3-sync.ts)
//   E. one --big-mb MiB mixed-data NAR to [local] with the compute pool at full size vs
//      LOFT_COMPUTE_THREADS=1.
//   npm run build && node --import tsx bench/pipeline.bench.ts [--rounds 3] [--big-mb 2048] [--small]
//     [--baseline DIR] [--server-cpu-prof DIR]
// --baseline DIR: also run A, C and E with another build's dist/ (DIR/cli/main.js, e.g. a copy of
// dist/ built from the commit before a change), interleaved with this build's runs, so before and
// after are measured side by side under the same load.
// --server-cpu-prof DIR: run s3rver under --cpu-prof; its profile of the whole run (every C and D)
// lands in DIR (summarise it with bench/lib/cpu-profile-summary.ts). Profile a single round of C
// or D alone to tell them apart (docs/s3-server-cost.md did so).
// loft runs as a user's installed `loft` does (bench/lib/loft-runs.ts, loftCommand): dist/cli/main.js
// executed as a program, so its shebang's launch settings (src/cli/launch-env.ts) apply; a baseline
// built before them runs on its plain `#!/usr/bin/env node`.
// Bars (issue 27): A/B <= 0.7 in wall time and <= 1.1 in CPU seconds, C/D <= 0.7, peak RSS of the
// closure to S3 <= 200 MB and of one 2 GiB NAR (E) <= 150 MB; from issue 13, E >= 1.6x faster with
// the full pool. Deletes what it built at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomSalt } from '../test/helpers/fixtures.js';
import { buildAttr, buildBenchClosure, deleteWithDerivers, warmPageCache } from './lib/bench-closure.js';
import {
  generateSigningKey,
  LOFT_MAIN,
  runLoftUpload,
  runNixCopy,
  writeLoftConfig,
} from './lib/loft-runs.js';
import { roundBuckets, startS3rverProcess, type S3rverProcess } from './lib/s3rver-process.js';
import {
  beside,
  combined,
  flushEarlierWrites,
  median,
  runTimed,
  type TimedRun,
} from './lib/timed-command.js';

const SYNC = fileURLToPath(new URL('./lib/s3-sync.ts', import.meta.url));
const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'big-mb': { type: 'string', default: '2048' },
    small: { type: 'boolean', default: false },
    baseline: { type: 'string' },
    'server-cpu-prof': { type: 'string' },
  },
});
const baselineMain = opt.baseline === undefined ? undefined : resolve(opt.baseline, 'cli', 'main.js');
const rounds = Number(opt.rounds);
const smallClosure = ['--arg', 'perLayer', '5', '--arg', 'randomBigMb', '8', '--arg', 'textBigMb', '20'];
const bigMb = opt.small ? '128' : opt['big-mb'];

const rows: string[] = [];
const row = (what: string, value: string, bar = ''): void =>
  void rows.push(`| ${what} | ${value} | ${bar} |`);
const med = (runs: TimedRun[], f: (r: TimedRun) => number): number => median(runs.map(f));
const wall = (runs: TimedRun[]): number => med(runs, (r) => r.seconds);
const rssMb = (runs: TimedRun[]): number => Math.max(...runs.map((r) => r.maxRssKb)) / 1024;
const describe = (runs: TimedRun[]): string =>
  `${wall(runs).toFixed(2)} s (${runs.map((r) => r.seconds.toFixed(2)).join(', ')}), ` +
  `CPU ${med(runs, (r) => r.cpuSeconds).toFixed(1)} s, peak RSS ${rssMb(runs).toFixed(0)} MB`;
const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISSED');
const cpu = (runs: TimedRun[]): number => med(runs, (r) => r.cpuSeconds);
const ratios = (x: TimedRun[], y: TimedRun[]): string =>
  `${(wall(x) / wall(y)).toFixed(2)}; ${(cpu(x) / cpu(y)).toFixed(2)}`;

/** This build's runs, then the baseline's when --baseline is given: [main.js, where its runs go]. */
function loftBuilds(current: TimedRun[], base: TimedRun[]): Array<[string, TimedRun[]]> {
  return baselineMain === undefined
    ? [[LOFT_MAIN, current]]
    : [
        [LOFT_MAIN, current],
        [baselineMain, base],
      ];
}

interface Ctx {
  tmp: string;
  keyPath: string;
  root: string;
  s3: S3rverProcess;
}

async function closureRounds(ctx: Ctx): Promise<void> {
  const runs = { a: [] as TimedRun[], b: [] as TimedRun[], c: [] as TimedRun[], d: [] as TimedRun[] };
  const baseline = { a: [] as TimedRun[], c: [] as TimedRun[] };
  const serverCpu = { c: [] as number[], d: [] as number[], baseline: [] as number[] };
  // Kept until every round has run (about 1.2 GB per round and build): a run right after the
  // deletion of many files creates its own slowly on ext4, which skips recently deleted inodes
  // (bench/floor.bench.ts), and loft and nix copy create different numbers of files. Each run
  // starts with the earlier ones' writes on disk (flushEarlierWrites).
  const written: string[] = [];
  for (let i = 1; i <= rounds; i++) {
    for (const [main, into] of loftBuilds(runs.a, baseline.a)) {
      const localDir = join(ctx.tmp, `local-${i}-${into === runs.a ? 'cur' : 'base'}`);
      written.push(localDir);
      const config = writeLoftConfig(
        join(ctx.tmp, `a-${i}-${into === runs.a ? 'cur' : 'base'}`),
        { localDir },
        ctx.keyPath,
      );
      flushEarlierWrites();
      into.push(await runLoftUpload(config, ctx.root, [], {}, main));
    }
    const nixDir = join(ctx.tmp, `nix-${i}`);
    written.push(nixDir);
    flushEarlierWrites();
    runs.b.push(await runNixCopy(nixDir, ctx.root, ctx.keyPath));
    for (const [main, into] of loftBuilds(runs.c, baseline.c)) {
      const before = ctx.s3.cpuSeconds();
      const bucket = into === runs.c ? `loft-${i}` : `base-${i}`;
      const s3Target = { s3: { endpoint: ctx.s3.endpoint, bucket } };
      const config = writeLoftConfig(join(ctx.tmp, `${bucket}`), s3Target, ctx.keyPath);
      flushEarlierWrites();
      into.push(await runLoftUpload(config, ctx.root, [], {}, main));
      (into === runs.c ? serverCpu.c : serverCpu.baseline).push(ctx.s3.cpuSeconds() - before);
    }
    flushEarlierWrites();
    const before = ctx.s3.cpuSeconds();
    const sync = await runTimed(process.execPath, [SYNC, nixDir, ctx.s3.endpoint, `nix-${i}`]);
    serverCpu.d.push(ctx.s3.cpuSeconds() - before);
    runs.d.push(combined(runs.b[runs.b.length - 1]!, sync));
  }
  for (const dir of written) rmSync(dir, { recursive: true, force: true });
  row('A. loft -> [local]', describe(runs.a));
  row('B. nix copy --to file://DIR?compression=zstd', describe(runs.b));
  const ab = wall(runs.a) / wall(runs.b);
  row('A / B (wall)', beside(ab, 0.7), `<= 0.7 ${verdict(ab <= 0.7)}`);
  const abCpu = cpu(runs.a) / cpu(runs.b);
  row('A / B (CPU)', beside(abCpu, 1.1), `<= 1.1 ${verdict(abCpu <= 1.1)}`);
  row('C. loft -> s3rver', describe(runs.c), `peak RSS <= 200 MB ${verdict(rssMb(runs.c) <= 200)}`);
  row('D. nix copy --to file://DIR, then sync DIR -> s3rver', describe(runs.d));
  const cd = wall(runs.c) / wall(runs.d);
  row('C / D (wall)', beside(cd, 0.7), `<= 0.7 ${verdict(cd <= 0.7)}`);
  if (baselineMain !== undefined) {
    row('A with --baseline', describe(baseline.a));
    row('A / B with --baseline (wall; CPU)', ratios(baseline.a, runs.b));
    row('C with --baseline', describe(baseline.c));
    row('C / D with --baseline (wall)', (wall(baseline.c) / wall(runs.d)).toFixed(2));
    row('s3rver CPU during C with --baseline', `${median(serverCpu.baseline).toFixed(1)} s`);
  }
  row('C / B (loft to S3 / nix copy alone)', (wall(runs.c) / wall(runs.b)).toFixed(2), 'goal 1.0');
  row(
    's3rver CPU during C / during the sync of D (medians)',
    `${median(serverCpu.c).toFixed(1)} s / ${median(serverCpu.d).toFixed(1)} s`,
  );
}

async function bigNar(ctx: Ctx, salt: string, toDelete: string[]): Promise<void> {
  const path = await buildAttr('bigMixed', salt, ['--arg', 'bigFileMb', bigMb]);
  toDelete.push(path);
  await warmPageCache([path]);
  const byThreads = new Map<number, TimedRun[]>();
  for (const threads of [availableParallelism(), 1]) {
    const runs: TimedRun[] = [];
    const base: TimedRun[] = [];
    const env = { LOFT_COMPUTE_THREADS: String(threads) };
    for (let i = 1; i <= rounds; i++) {
      for (const [main, into] of loftBuilds(runs, base)) {
        const localDir = join(ctx.tmp, `big-${threads}-${i}`);
        const config = writeLoftConfig(
          join(ctx.tmp, `e-${threads}-${i}-${into === runs ? 'cur' : 'base'}`),
          { localDir },
          ctx.keyPath,
        );
        into.push(await runLoftUpload(config, path, [], env, main));
        rmSync(localDir, { recursive: true, force: true });
      }
    }
    byThreads.set(threads, runs);
    row(`E. one ${bigMb} MiB mixed NAR -> [local], LOFT_COMPUTE_THREADS=${threads}`, describe(runs));
    if (baselineMain !== undefined) row(`E with --baseline, LOFT_COMPUTE_THREADS=${threads}`, describe(base));
  }
  const full = byThreads.get(availableParallelism())!;
  const one = byThreads.get(1)!;
  const speedup = wall(one) / wall(full);
  row(
    'E speed-up, full pool / one thread (wall)',
    `${beside(speedup, 1.6)}x`,
    `>= 1.6 ${verdict(speedup >= 1.6)}`,
  );
  row('E peak RSS, full pool', `${rssMb(full).toFixed(0)} MB`, `<= 150 MB ${verdict(rssMb(full) <= 150)}`);
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'loft-pipeline-bench-'));
  const salt = randomSalt();
  const toDelete: string[] = [];
  let s3: S3rverProcess | undefined;
  try {
    row('machine', `${availableParallelism()} cores, load average at start ${loadavg()[0]!.toFixed(2)}`);
    row('loft started as', 'dist/cli/main.js run as a program (the npm bin: its shebang, node from PATH)');
    const closure = await buildBenchClosure(salt, opt.small ? smallClosure : []);
    toDelete.push(...[...closure.paths].reverse());
    row('closure', `${closure.narSizes.size} paths, NAR ${(closure.narTotal / 2 ** 20).toFixed(0)} MiB`);
    const keyPath = join(tmp, 'signing-key');
    generateSigningKey(keyPath);
    const profileDir = opt['server-cpu-prof'] === undefined ? undefined : resolve(opt['server-cpu-prof']);
    s3 = await startS3rverProcess(join(tmp, 's3rver'), roundBuckets(rounds), profileDir);
    await warmPageCache(closure.paths);
    const ctx: Ctx = { tmp, keyPath, root: closure.root, s3 };
    await closureRounds(ctx);
    await bigNar(ctx, salt, toDelete);
  } finally {
    console.log(
      `\nPipeline benchmark (${rounds} rounds, medians)\n\n| measure | value | bar |\n|---|---|---|`,
    );
    console.log(rows.join('\n'));
    await s3?.stop();
    const left = await deleteWithDerivers(toDelete);
    if (left.length > 0) console.error(`could not delete ${left.length} store paths, e.g. ${left[0]}`);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
