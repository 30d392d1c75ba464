// Upload benchmark: the built loft CLI uploading a synthetic closure of about 1.3 GiB of NAR (300
// paths, 30,000 files; bench/fixtures/upload-closure.nix) to s3rver in its own process, against
// `nix copy` of the same closure to a file:// cache; the fully cached re-run against
// `nix path-info -r`; and loft's peak RSS on one 2 GiB single-file path.
//   node --import tsx bench/upload.bench.ts [--rounds 3] [--cached-rounds 5] [--big-mb 2048]
//     [--upload-threads N] [--part-size-mb N] [--no-context] [--small]
// Bars: loft / nix copy <= 1.5 (goal 1.0); cached loft / nix path-info <= 1.3; peak RSS on the big
// path <= 200 MB. Both sides run warm (every file read once first; no cache drop). Deletes its
// store paths, temp files and the s3rver process at the end, also on failure.
import { DEFAULTS } from '../src/config/defaults.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomSalt } from '../test/helpers/fixtures.js';
import { nixBin } from '../test/helpers/nix-env.js';
import { startForwardingProxy, type ForwardingProxy } from '../test/helpers/s3-server.js';
import {
  buildAttr,
  buildBenchClosure,
  deleteWithDerivers,
  warmPageCache,
  type BuiltClosure,
} from './lib/bench-closure.js';
import {
  LOFT_MAIN,
  generateSigningKey,
  narDirBytes,
  runLoftUpload,
  runNixCopy,
  runPathInfo,
  writeLoftConfig,
  type LoftRun,
  type LoftSettings,
} from './lib/loft-runs.js';
import { formatCounts, requestStats } from './lib/request-stats.js';
import { startS3rverProcess, type S3rverProcess } from './lib/s3rver-process.js';
import { median, runTimed, type TimedRun } from './lib/timed-command.js';

const MiB = 1024 * 1024;
const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'cached-rounds': { type: 'string', default: '5' },
    'big-mb': { type: 'string', default: '2048' },
    'upload-threads': { type: 'string' },
    'part-size-mb': { type: 'string' },
    'no-context': { type: 'boolean', default: false },
    /** A tiny closure, to check the bench itself quickly. */
    small: { type: 'boolean', default: false },
  },
});
const rounds = Number(opt.rounds);
const partSizeMb = Number(opt['part-size-mb'] ?? DEFAULTS.partSizeMb);
const settings: LoftSettings = {
  loftLines: opt['upload-threads'] ? [`upload_threads = ${opt['upload-threads']}`] : [],
  s3Lines: opt['part-size-mb'] ? [`part_size_mb = ${opt['part-size-mb']}`] : [],
};
const smallArgs = [
  '--arg',
  'perLayer',
  '5',
  '--arg',
  'randomBigMb',
  '8',
  '--arg',
  'textBigMb',
  '20',
  '--arg',
  'bigFileMb',
  '64',
];

const rows: string[] = [];
const row = (what: string, value: string, bar = ''): void =>
  void rows.push(`| ${what} | ${value} | ${bar} |`);
const secs = (runs: TimedRun[]): string =>
  `${median(runs.map((r) => r.seconds)).toFixed(2)} s (runs: ${runs.map((r) => r.seconds.toFixed(2)).join(', ')})`;
const rssMb = (runs: TimedRun[]): string =>
  `${(Math.max(...runs.map((r) => r.maxRssKb)) / 1024).toFixed(0)} MB`;
const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISSED');
const cpu = (runs: TimedRun[]): string => median(runs.map((r) => r.cpuSeconds)).toFixed(1);

interface Ctx {
  tmp: string;
  keyPath: string;
  closure: BuiltClosure;
  s3: S3rverProcess;
  proxy: ForwardingProxy;
}

async function uploadRounds(ctx: Ctx): Promise<{ nixSeconds: number; firstConfig: string }> {
  const loft: LoftRun[] = [];
  const nix: TimedRun[] = [];
  const serverCpu: number[] = [];
  const proxyCpu: number[] = [];
  let firstConfig = '';
  let nixBytes = 0;
  for (let i = 1; i <= rounds; i++) {
    const config = writeLoftConfig(
      join(ctx.tmp, `loft-${i}`),
      { s3: { endpoint: ctx.proxy.endpoint, bucket: `bench-${i}` } },
      ctx.keyPath,
      settings,
    );
    if (i === 1) firstConfig = config;
    ctx.proxy.requests.length = 0;
    const serverBefore = ctx.s3.cpuSeconds();
    const selfBefore = process.cpuUsage();
    loft.push(await runLoftUpload(config, ctx.closure.root));
    const self = process.cpuUsage(selfBefore);
    proxyCpu.push((self.user + self.system) / 1e6);
    serverCpu.push(ctx.s3.cpuSeconds() - serverBefore);
    if (i === 1) reportRequests(ctx);
    const dir = join(ctx.tmp, `nix-copy-${i}`);
    nix.push(await runNixCopy(dir, ctx.closure.root, ctx.keyPath));
    nixBytes = narDirBytes(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  const narMiB = ctx.closure.narTotal / MiB;
  const l = median(loft.map((r) => r.seconds));
  const n = median(nix.map((r) => r.seconds));
  row(
    'A. loft --upload-path ROOT -> s3rver (via recording proxy)',
    `${secs(loft)}, ${(narMiB / l).toFixed(0)} MiB/s of NAR, peak RSS ${rssMb(loft)}`,
  );
  row(
    'CPU seconds during A (medians): loft / s3rver / proxy in the bench process',
    `${cpu(loft)} / ${median(serverCpu).toFixed(1)} / ${median(proxyCpu).toFixed(1)} (on ${cpus().length} cores)`,
  );
  row(
    'B. nix copy --to file://DIR?compression=zstd ROOT',
    `${secs(nix)}, ${(narMiB / n).toFixed(0)} MiB/s of NAR, peak RSS ${rssMb(nix)}, CPU ${cpu(nix)} s`,
  );
  row(
    'ratio A / B',
    (l / n).toFixed(2),
    `<= 1.5 ${verdict(l / n <= 1.5)} (goal <= 1.0 ${verdict(l / n <= 1.0)})`,
  );
  row(
    'compressed NAR bytes, loft / nix copy',
    `${(loft[0]!.fileBytes / MiB).toFixed(0)} MiB / ${(nixBytes / MiB).toFixed(0)} MiB (paths uploaded by loft: ${loft[0]!.uploaded})`,
  );
  return { nixSeconds: n, firstConfig };
}

function reportRequests(ctx: Ctx): void {
  const s = requestStats(ctx.proxy.requests, ctx.closure.narSizes, partSizeMb * MiB);
  const paths = ctx.closure.narSizes.size;
  row(
    'requests, first upload',
    `${s.total} in all, ${(s.total / paths).toFixed(2)} per path; ${formatCounts(s.byOperation)}; presence checks (HEAD, LIST): ${s.presence}; other (nix-cache-info): ${s.overhead}`,
  );
  row(
    `paths with NAR < part size (${partSizeMb} MiB): upload requests each (presence checks apart)`,
    `${s.smallWithTwo} of ${s.smallPaths} cost exactly 2, NAR PUT + narinfo PUT (requests: paths = ${formatCounts(s.smallCounts)})`,
    `all 2 ${verdict(s.smallWithTwo === s.smallPaths)}`,
  );
  row('paths with NAR >= part size', `${s.largePaths} paths, ${s.largeRequests} upload requests`);
}

async function cachedRounds(ctx: Ctx, config: string): Promise<void> {
  const loft: TimedRun[] = [];
  const info: TimedRun[] = [];
  const bare: TimedRun[] = [];
  const version: TimedRun[] = [];
  ctx.proxy.requests.length = 0;
  for (let i = 0; i < Number(opt['cached-rounds']); i++) {
    loft.push(await runLoftUpload(config, ctx.closure.root));
    info.push(await runPathInfo(ctx.closure.root));
    bare.push(await runTimed(process.execPath, ['-e', '0']));
    version.push(await runTimed(process.execPath, [LOFT_MAIN, '--version']));
  }
  const r = median(loft.map((x) => x.seconds)) / median(info.map((x) => x.seconds));
  row(
    'C. loft --upload-path ROOT, all cached (same bucket and presence db)',
    `${secs(loft)}, peak RSS ${rssMb(loft)}, requests to S3: ${ctx.proxy.requests.length} in ${loft.length} runs`,
  );
  row('D. nix path-info --json --recursive ROOT', secs(info));
  row('ratio C / D', r.toFixed(2), `<= 1.3 ${verdict(r <= 1.3)}`);
  row('floor of C: bare `node -e 0` / `loft --version` (module loading)', `${secs(bare)} / ${secs(version)}`);
}

async function bigPath(ctx: Ctx, salt: string, toDelete: string[]): Promise<void> {
  const started = process.hrtime.bigint();
  const path = await buildAttr('big', salt, opt.small ? smallArgs : ['--arg', 'bigFileMb', opt['big-mb']]);
  toDelete.push(path);
  const buildS = Number(process.hrtime.bigint() - started) / 1e9;
  await warmPageCache([path]);
  const config = writeLoftConfig(
    join(ctx.tmp, 'loft-big'),
    { s3: { endpoint: ctx.proxy.endpoint, bucket: 'bench-big' } },
    ctx.keyPath,
    settings,
  );
  ctx.proxy.requests.length = 0;
  const run = await runLoftUpload(config, path);
  const parts = ctx.proxy.requests.filter((r) => r.method === 'PUT' && r.query.has('partNumber')).length;
  const mb = run.maxRssKb / 1024;
  const narMiB = (run.uploaded > 0 ? run.narBytes : 0) / MiB;
  row(
    `E. loft uploading one ${narMiB.toFixed(0)} MiB NAR of one random file (built in ${buildS.toFixed(0)} s)`,
    `${run.seconds.toFixed(2)} s, ${ctx.proxy.requests.length} requests (${parts} parts)`,
  );
  row('peak RSS of E (GNU time, max RSS)', `${mb.toFixed(0)} MB`, `<= 200 MB ${verdict(mb <= 200)}`);
}

/** Same closure, other targets: how much of A is the proxy, s3rver, or loft itself. */
async function contextRuns(ctx: Ctx, nixSeconds: number): Promise<void> {
  const direct = writeLoftConfig(
    join(ctx.tmp, 'loft-direct'),
    { s3: { endpoint: ctx.s3.endpoint, bucket: 'bench-direct' } },
    ctx.keyPath,
    settings,
  );
  const d = await runLoftUpload(direct, ctx.closure.root);
  row(
    'context: A without the proxy (loft -> s3rver directly), 1 run',
    `${d.seconds.toFixed(2)} s, peak RSS ${(d.maxRssKb / 1024).toFixed(0)} MB, loft CPU ${d.cpuSeconds.toFixed(1)} s`,
  );
  const localDir = join(ctx.tmp, 'local-cache');
  const local = writeLoftConfig(join(ctx.tmp, 'loft-local'), { localDir }, ctx.keyPath, settings);
  const l = await runLoftUpload(local, ctx.closure.root);
  rmSync(localDir, { recursive: true, force: true });
  row(
    'context: loft -> [local] directory (same kind of target as B), 1 run',
    `${l.seconds.toFixed(2)} s, peak RSS ${(l.maxRssKb / 1024).toFixed(0)} MB, loft CPU ${l.cpuSeconds.toFixed(1)} s; / B = ${(l.seconds / nixSeconds).toFixed(2)}`,
  );
}

async function machineFacts(): Promise<void> {
  const nixVersion = (await nixBin(['nix', '--version'])).stdout.trim();
  const cpu = cpus();
  row(
    'machine',
    `nproc ${cpu.length} (${cpu[0]?.model ?? '?'}), memory ${(totalmem() / 2 ** 30).toFixed(1)} GiB, load average at start ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}, node ${process.version}, ${nixVersion}`,
  );
  row('page cache', 'warm for every measured run: each file read once before; no drop_caches');
  row(
    'loft settings',
    `compression zstd level 3, upload_threads ${opt['upload-threads'] ?? '12 (default)'}, part_size_mb ${partSizeMb}${opt['part-size-mb'] ? '' : ' (default)'}, signing key set`,
  );
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'loft-upload-bench-'));
  const salt = randomSalt();
  const toDelete: string[] = [];
  let s3: S3rverProcess | undefined;
  let proxy: ForwardingProxy | undefined;
  try {
    await machineFacts();
    const closure = await buildBenchClosure(salt, opt.small ? smallArgs : []);
    toDelete.push(...[...closure.paths].reverse());
    row(
      'closure',
      `${closure.narSizes.size} paths, ${closure.regularFiles} regular files, NAR total ${(closure.narTotal / MiB).toFixed(0)} MiB (sum of narSize); built in ${closure.buildSeconds.toFixed(0)} s`,
    );
    const keyPath = join(tmp, 'signing-key');
    generateSigningKey(keyPath);
    const buckets = [
      ...Array.from({ length: rounds }, (_, i) => `bench-${i + 1}`),
      'bench-big',
      'bench-direct',
    ];
    s3 = await startS3rverProcess(join(tmp, 's3rver'), buckets);
    proxy = await startForwardingProxy(s3.endpoint);
    const ctx: Ctx = { tmp, keyPath, closure, s3, proxy };
    await warmPageCache(closure.paths);
    const { nixSeconds, firstConfig } = await uploadRounds(ctx);
    await cachedRounds(ctx, firstConfig);
    if (!opt['no-context']) await contextRuns(ctx, nixSeconds);
    await bigPath(ctx, salt, toDelete);
  } finally {
    console.log(
      `\nUpload benchmark (${rounds} rounds, medians)\n\n| measure | value | bar |\n|---|---|---|\n${rows.join('\n')}`,
    );
    await proxy?.close().catch(() => undefined);
    await s3?.stop();
    const left = await deleteWithDerivers(toDelete);
    if (left.length > 0) console.error(`could not delete ${left.length} store paths, e.g. ${left[0]}`);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
