// What the runtime itself costs for loft's work, beside `nix copy` and loft, in one run: medians of
// `--rounds`, wall time, CPU seconds split into user and system, peak RSS:
//   A. loft -> [local] directory (the built CLI, as pipeline.bench.ts runs it)
//   B. nix copy --to file://DIR?compression=zstd
//   F. bench/lib/sync-floor.ts: the same NARs, hashes and zstd frames from a Node.js program that
//      does nothing else, synchronously on one thread with one reused zstd context.
//   F2. the same program with one such thread per core, each taking the next path (largest first)
//      when it finishes one: the floor of a program that keeps every core busy.
//   Fs. two single-threaded floors side by side, one given 64 % of the NAR bytes and the other 36 %:
//      both cores busy for a little over half the run, about the parallelism the wall bar needs
//      once the cost of sharing the cores (F2 against F) is paid.
//   npm run build && npm run bench -- floor [--rounds 3]
// F / B is the least CPU a Node.js program spends against Nix on these bytes, on this machine; A / F
// is what loft's pipeline adds (its concurrency, memory pools, state, signatures, build logs and
// fsync). Issue 27's bars are A / B <= 1.1 in CPU and <= 0.7 in wall time at once; F2 / B says
// whether a program doing only the work meets both on this machine, and what using every core
// costs in CPU by itself (F2 against F). Every round checks F's NarHash of every path against
// Nix's, and the first round decompresses F's files and hashes them again, so F is shown to write
// a cache, not merely to spend time. What each run wrote is kept until the end (about 1.8 GB per
// round on the default closure): ext4 allocates an inode slowly right after many were deleted (it
// skips recently deleted ones, `recently_deleted` in its inode allocator), so a run that follows
// the deletion of the one before pays the kernel up to 0.3 ms per file it creates, which a cache
// directory that only grows never does. Each run starts with earlier runs' writes on disk
// (flushEarlierWrites). Deletes what it built at the end.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { zstdDecompressSync } from 'node:zlib';
import { parseHash } from '../src/format/hash.js';
import { parseNarInfo } from '../src/format/narinfo.js';
import { randomSalt } from '../test/helpers/fixtures.js';
import { buildBenchClosure, deleteWithDerivers, warmPageCache } from './lib/bench-closure.js';
import { generateSigningKey, runLoftUpload, runNixCopy, writeLoftConfig } from './lib/loft-runs.js';
import { flushEarlierWrites, median, runTimed, type TimedRun } from './lib/timed-command.js';

const FLOOR = fileURLToPath(new URL('./lib/sync-floor.ts', import.meta.url));
const { values: opt } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
const rounds = Number(opt.rounds);

/** F's printed NarHash of every path must be Nix's, and F must have covered every path. */
function checkPrinted(stdout: string, expected: Map<string, string>): void {
  const seen = new Set<string>();
  for (const line of stdout.split('\n').filter((l) => l !== '')) {
    const [path, hash] = line.split(' ');
    if (path === undefined || expected.get(path) !== hash)
      throw new Error(`the floor program wrote a NAR Nix does not have: ${line}`);
    seen.add(path);
  }
  if (seen.size !== expected.size)
    throw new Error(`the floor program wrote ${seen.size} of ${expected.size} paths`);
}

/** Every narinfo F wrote: its file decompresses to bytes whose sha256 is the NarHash. */
function checkFiles(dir: string, expected: Map<string, string>): void {
  for (const path of expected.keys()) {
    const hashPart = path.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    const info = parseNarInfo(readFileSync(join(dir, `${hashPart}.narinfo`), 'utf8'));
    const nar = zstdDecompressSync(readFileSync(join(dir, info.url)));
    if (createHash('sha256').update(nar).digest('hex') !== expected.get(path))
      throw new Error(`${info.url} does not decompress to the NAR of ${path}`);
  }
}

/**
 * `paths` (largest first) in two lists, the first holding about `share` of the NAR bytes: each path
 * goes to the list furthest below its share.
 */
function splitByBytes(paths: string[], sizes: Map<string, number>, share: number): [string[], string[]] {
  const lists: [string[], string[]] = [[], []];
  const bytes = [0, 0];
  for (const path of paths) {
    const i = bytes[0]! / share <= bytes[1]! / (1 - share) ? 0 : 1;
    lists[i].push(path);
    bytes[i] = bytes[i]! + sizes.get(path)!;
  }
  return lists;
}

const med = (runs: TimedRun[], f: (r: TimedRun) => number): number => median(runs.map(f));
const describe = (runs: TimedRun[]): string =>
  `${med(runs, (r) => r.seconds).toFixed(2)} s (${runs.map((r) => r.seconds.toFixed(2)).join(', ')}) | ` +
  `${med(runs, (r) => r.cpuSeconds).toFixed(2)} (${runs.map((r) => r.cpuSeconds.toFixed(2)).join(', ')}) | ` +
  `${med(runs, (r) => r.userSeconds).toFixed(2)} | ${med(runs, (r) => r.systemSeconds).toFixed(2)} | ` +
  `${(Math.max(...runs.map((r) => r.maxRssKb)) / 1024).toFixed(0)} MB`;
/** Ratio of medians, and the spread of the per-round ratios (both ran in the same round). */
const ratio = (x: TimedRun[], y: TimedRun[], f: (r: TimedRun) => number): string => {
  const per = x.map((r, i) => f(r) / f(y[i]!));
  return `${(med(x, f) / med(y, f)).toFixed(2)} (rounds ${Math.min(...per).toFixed(2)}-${Math.max(...per).toFixed(2)})`;
};

const tmp = mkdtempSync(join(tmpdir(), 'loft-bench-floor-'));
let built: string[] = [];
try {
  console.log(
    `machine: ${availableParallelism()} cores, load average ${loadavg()[0]!.toFixed(2)} at the start`,
  );
  const closure = await buildBenchClosure(randomSalt());
  built = closure.paths;
  console.log(
    `closure: ${closure.paths.length} paths, ${(closure.narTotal / 2 ** 20).toFixed(0)} MiB of NAR, ` +
      `${closure.regularFiles} files`,
  );
  const keyPath = join(tmp, 'key');
  generateSigningKey(keyPath);
  const list = join(tmp, 'paths');
  writeFileSync(list, closure.paths.join('\n') + '\n');
  // Largest first, so that no thread of F2 is left with a large NAR while the others are idle.
  const bySize = [...closure.paths].sort((x, y) => closure.narSizes.get(y)! - closure.narSizes.get(x)!);
  const sortedList = join(tmp, 'paths-by-size');
  writeFileSync(sortedList, bySize.join('\n') + '\n');
  const cores = availableParallelism();
  const [bigShare, smallShare] = splitByBytes(bySize, closure.narSizes, 0.64).map((paths, i) => {
    const file = join(tmp, `paths-share-${i}`);
    writeFileSync(file, paths.join('\n') + '\n');
    return file;
  });
  // Nix's NarHash of every member, as the hex F prints.
  const expected = new Map(
    [...closure.narHashes].map(([path, hash]) => [path, parseHash(hash).digest.toString('hex')]),
  );
  await warmPageCache(closure.paths);
  const runs = {
    a: [] as TimedRun[],
    b: [] as TimedRun[],
    f: [] as TimedRun[],
    f2: [] as TimedRun[],
    fs: [] as TimedRun[],
  };
  for (let i = 1; i <= rounds; i++) {
    const nixDir = join(tmp, `nix-${i}`);
    flushEarlierWrites();
    runs.b.push(await runNixCopy(nixDir, closure.root, keyPath));
    const localDir = join(tmp, `local-${i}`);
    const config = writeLoftConfig(join(tmp, `a-${i}`), { localDir }, keyPath);
    flushEarlierWrites();
    const a = await runLoftUpload(config, closure.root);
    if (a.uploaded !== closure.paths.length)
      throw new Error(`loft uploaded ${a.uploaded} of ${closure.paths.length} paths`);
    runs.a.push(a);
    const floorDir = join(tmp, `floor-${i}`);
    flushEarlierWrites();
    const f = await runTimed(process.execPath, [FLOOR, floorDir, list]);
    checkPrinted(f.stdout, expected);
    if (i === 1) checkFiles(floorDir, expected);
    runs.f.push(f);
    const floor2Dir = join(tmp, `floor2-${i}`);
    flushEarlierWrites();
    const f2 = await runTimed(process.execPath, [FLOOR, floor2Dir, sortedList, String(cores)]);
    checkPrinted(f2.stdout, expected);
    if (i === 1) checkFiles(floor2Dir, expected);
    runs.f2.push(f2);
    const splitDir = join(tmp, `floor-split-${i}`);
    flushEarlierWrites();
    // GNU time counts the shell's waited-for children: both programs' CPU is in the figure. Each
    // prints to a file of its own, so their lines cannot interleave.
    const printed = [join(tmp, `split-${i}-a.txt`), join(tmp, `split-${i}-b.txt`)];
    const fs = await runTimed('sh', [
      '-c',
      '"$0" "$1" "$2" "$3" > "$5" & a=$!; "$0" "$1" "$2" "$4" > "$6" & b=$!; wait $a && wait $b',
      process.execPath,
      FLOOR,
      splitDir,
      bigShare!,
      smallShare!,
      ...printed,
    ]);
    checkPrinted(printed.map((f) => readFileSync(f, 'utf8')).join(''), expected);
    if (i === 1) checkFiles(splitDir, expected);
    runs.fs.push(fs);
  }
  const cpu = (r: TimedRun): number => r.cpuSeconds;
  const wall = (r: TimedRun): number => r.seconds;
  console.log(`\n| run | wall (rounds) | CPU s (rounds) | user | system | peak RSS |`);
  console.log(`| --- | --- | --- | --- | --- | --- |`);
  console.log(`| A. loft -> [local] | ${describe(runs.a)} |`);
  console.log(`| B. nix copy --to file://DIR?compression=zstd | ${describe(runs.b)} |`);
  console.log(`| F. the synchronous floor (bench/lib/sync-floor.ts) | ${describe(runs.f)} |`);
  console.log(`| F2. the floor on ${cores} threads | ${describe(runs.f2)} |`);
  console.log(`| Fs. two floors side by side, 64 % and 36 % of the bytes | ${describe(runs.fs)} |`);
  console.log(`\n| ratio | CPU | wall |`);
  console.log(`| --- | --- | --- |`);
  console.log(
    `| F / B: the runtime's least against Nix | ${ratio(runs.f, runs.b, cpu)} | ${ratio(runs.f, runs.b, wall)} |`,
  );
  console.log(
    `| A / B (issue 27: CPU <= 1.1, wall <= 0.7) | ${ratio(runs.a, runs.b, cpu)} | ${ratio(runs.a, runs.b, wall)} |`,
  );
  console.log(
    `| F2 / B: the runtime's least on every core against Nix | ${ratio(runs.f2, runs.b, cpu)} | ${ratio(runs.f2, runs.b, wall)} |`,
  );
  console.log(
    `| Fs / B: the runtime's least at about the wall bar's parallelism | ${ratio(runs.fs, runs.b, cpu)} | ${ratio(runs.fs, runs.b, wall)} |`,
  );
  console.log(
    `| F2 / F: what every core costs by itself | ${ratio(runs.f2, runs.f, cpu)} | ${ratio(runs.f2, runs.f, wall)} |`,
  );
  console.log(
    `| A / F: what loft's pipeline adds | ${ratio(runs.a, runs.f, cpu)} | ${ratio(runs.a, runs.f, wall)} |`,
  );
  console.log(
    `| A / F2: what loft adds to a program that uses every core | ${ratio(runs.a, runs.f2, cpu)} | ${ratio(runs.a, runs.f2, wall)} |`,
  );
} finally {
  if (built.length > 0) await deleteWithDerivers([...built].reverse());
  rmSync(tmp, { recursive: true, force: true });
}
