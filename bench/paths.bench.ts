// Per-path overhead benchmark on closures of many tiny paths (bench/fixtures/tiny-paths.nix):
//   A. the fully cached re-run (`loft --upload-path ROOT` when the presence cache has every path)
//      against `nix path-info --json --recursive ROOT`, on a closure of `--cached-count` paths;
//   B. uploading `--s3-count` tiny paths to s3rver (its own process), in paths per second, against
//      `nix copy --to file://DIR` followed by a sync of DIR to the same s3rver
//      (bench/lib/s3-sync.ts: the AWS CLI's transfer defaults; tiny files go in one PutObject each).
//   npm run build && node --openssl-legacy-provider --import tsx bench/paths.bench.ts \
//     [--cached-count 2000] [--s3-count 1000] [--rounds 5] [--s3-rounds 2]
// Bars: A <= 1.3 (on >= 2,000 paths); B loft paths/s >= nix copy + sync. Every figure comes with
// CPU seconds (user + sys, children included). Deletes its store paths, temp files and s3rver.
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomSalt } from '../test/helpers/fixtures.js';
import { nixBin } from '../test/helpers/nix-env.js';
import { deleteWithDerivers } from './lib/bench-closure.js';
import {
  generateSigningKey,
  runLoftUpload,
  runNixCopy,
  runPathInfo,
  writeLoftConfig,
  type LoftRun,
} from './lib/loft-runs.js';
import { startS3rverProcess, type S3rverProcess } from './lib/s3rver-process.js';
import { median, runTimed, type TimedRun } from './lib/timed-command.js';

const TINY_PATHS_NIX = fileURLToPath(new URL('./fixtures/tiny-paths.nix', import.meta.url));
const S3_SYNC = fileURLToPath(new URL('./lib/s3-sync.ts', import.meta.url));

const { values: opt } = parseArgs({
  options: {
    'cached-count': { type: 'string', default: '2000' },
    's3-count': { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '5' },
    's3-rounds': { type: 'string', default: '2' },
  },
});

const rows: string[] = [];
const row = (what: string, value: string, bar = ''): void =>
  void rows.push(`| ${what} | ${value} | ${bar} |`);
const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISSED');
const med = (runs: TimedRun[], f: (r: TimedRun) => number): number => median(runs.map(f));
const wallCpu = (runs: TimedRun[]): string =>
  `${med(runs, (r) => r.seconds).toFixed(3)} s wall (runs: ${runs.map((r) => r.seconds.toFixed(2)).join(', ')}), ` +
  `${med(runs, (r) => r.cpuSeconds).toFixed(3)} CPU-s`;

/** Writes the tiny paths into the store while evaluating (builtins.toFile) and returns the root. */
async function buildTinyClosure(salt: string, count: number): Promise<{ root: string; paths: string[] }> {
  const started = process.hrtime.bigint();
  const expr = `import ${TINY_PATHS_NIX} { salt = ${JSON.stringify(salt)}; count = ${count}; }`;
  const { stdout } = await nixBin(['nix-instantiate', '--read-write-mode', '--eval', '-E', expr]);
  const root = JSON.parse(stdout.trim()) as string;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const paths = (await nixBin(['nix-store', '--query', '--requisites', '--', root])).stdout
    .split('\n')
    .filter((l) => l !== '');
  row(`tiny closure of ${count} + 1 paths`, `${paths.length} paths written in ${seconds.toFixed(1)} s`);
  return { root, paths };
}

async function cachedRerun(tmp: string, keyPath: string, root: string): Promise<void> {
  const config = writeLoftConfig(join(tmp, 'cached'), { localDir: join(tmp, 'cached-cache') }, keyPath);
  const first = await runLoftUpload(config, root);
  row(
    'A0. first upload of that closure to [local] (fills the presence cache)',
    `${first.uploaded} paths, ${first.seconds.toFixed(2)} s wall, ${first.cpuSeconds.toFixed(2)} CPU-s`,
  );
  const loft: LoftRun[] = [];
  const info: TimedRun[] = [];
  const bare: TimedRun[] = [];
  for (let i = 0; i < Number(opt.rounds); i++) {
    loft.push(await runLoftUpload(config, root));
    info.push(await runPathInfo(root));
    bare.push(await runTimed(process.execPath, ['-e', '0']));
  }
  const uploadedAgain = loft.reduce((n, r) => n + r.uploaded, 0);
  if (uploadedAgain > 0) throw new Error(`a cached re-run uploaded ${uploadedAgain} paths`);
  const ratio = med(loft, (r) => r.seconds) / med(info, (r) => r.seconds);
  const cpuRatio = med(loft, (r) => r.cpuSeconds) / med(info, (r) => r.cpuSeconds);
  row('A. loft --upload-path ROOT, everything cached', wallCpu(loft));
  row('A-ref. nix path-info --json --recursive ROOT', wallCpu(info));
  row(
    'ratio A / A-ref (wall; CPU)',
    `${ratio.toFixed(2)}; ${cpuRatio.toFixed(2)}`,
    `<= 1.3 ${verdict(ratio <= 1.3)}`,
  );
  row('floor: bare `node -e 0`', wallCpu(bare));
}

async function tinyToS3(
  tmp: string,
  keyPath: string,
  root: string,
  count: number,
  s3: S3rverProcess,
): Promise<void> {
  const loft: TimedRun[] = [];
  const nix: TimedRun[] = [];
  const sync: TimedRun[] = [];
  const loftServer: number[] = [];
  const syncServer: number[] = [];
  for (let i = 1; i <= Number(opt['s3-rounds']); i++) {
    const config = writeLoftConfig(
      join(tmp, `s3-${i}`),
      { s3: { endpoint: s3.endpoint, bucket: `loft-${i}` } },
      keyPath,
    );
    let before = s3.cpuSeconds();
    const run = await runLoftUpload(config, root);
    loftServer.push(s3.cpuSeconds() - before);
    if (run.uploaded !== count) throw new Error(`loft uploaded ${run.uploaded} of ${count} paths`);
    loft.push(run);
    const dir = join(tmp, `nix-copy-${i}`);
    nix.push(await runNixCopy(dir, root, keyPath));
    before = s3.cpuSeconds();
    sync.push(await runTimed(process.execPath, [S3_SYNC, dir, s3.endpoint, `sync-${i}`, '10']));
    syncServer.push(s3.cpuSeconds() - before);
    rmSync(dir, { recursive: true, force: true });
  }
  const loftS = med(loft, (r) => r.seconds);
  const bothS = med(nix, (r) => r.seconds) + med(sync, (r) => r.seconds);
  row(
    `B. loft --upload-path ROOT -> s3rver, ${count} paths`,
    `${wallCpu(loft)}; ${(count / loftS).toFixed(0)} paths/s`,
  );
  row('B-ref1. nix copy --to file://DIR?compression=zstd ROOT', wallCpu(nix));
  row('B-ref2. sync of DIR to s3rver (bench/lib/s3-sync.ts, 10 PUTs at once)', wallCpu(sync));
  row(
    'B-ref. nix copy + sync, together',
    `${bothS.toFixed(2)} s wall, ${(med(nix, (r) => r.cpuSeconds) + med(sync, (r) => r.cpuSeconds)).toFixed(2)} CPU-s; ${(count / bothS).toFixed(0)} paths/s`,
  );
  row('paths/s B / B-ref', (bothS / loftS).toFixed(2), `>= 1.0 ${verdict(bothS / loftS >= 1)}`);
  row(
    's3rver CPU-s during B / during the sync',
    `${median(loftServer).toFixed(2)} / ${median(syncServer).toFixed(2)}`,
  );
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'loft-paths-bench-'));
  const toDelete: string[] = [];
  let s3: S3rverProcess | undefined;
  const nixVersion = (await nixBin(['nix', '--version'])).stdout.trim();
  row(
    'machine',
    `nproc ${cpus().length}, load average at start ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}, node ${process.version}, ${nixVersion}; loft defaults, signing key set`,
  );
  try {
    const keyPath = join(tmp, 'signing-key');
    generateSigningKey(keyPath);
    const cachedCount = Number(opt['cached-count']);
    const big = await buildTinyClosure(randomSalt(), cachedCount);
    toDelete.push(...[...big.paths].reverse());
    await cachedRerun(tmp, keyPath, big.root);
    const s3Count = Number(opt['s3-count']);
    const small = await buildTinyClosure(randomSalt(), s3Count - 1);
    toDelete.push(...[...small.paths].reverse());
    const rounds = Number(opt['s3-rounds']);
    const buckets = Array.from({ length: rounds }, (_, i) => [`loft-${i + 1}`, `sync-${i + 1}`]).flat();
    s3 = await startS3rverProcess(join(tmp, 's3rver'), buckets);
    await tinyToS3(tmp, keyPath, small.root, small.paths.length, s3);
  } finally {
    console.log(
      `\nPer-path benchmark (medians)\n\n| measure | value | bar |\n|---|---|---|\n${rows.join('\n')}`,
    );
    await s3?.stop();
    const left = await deleteWithDerivers(toDelete);
    if (left.length > 0) console.error(`could not delete ${left.length} store paths, e.g. ${left[0]}`);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
