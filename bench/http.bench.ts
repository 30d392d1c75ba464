// HTTP cache benchmark: the built loft CLI uploading the bench closure (bench/fixtures/upload-closure.nix)
// through [http] to a real nginx with WebDAV (test/helpers/nginx-server.ts, Basic auth on writes),
// against `nix copy --to http://...?compression=zstd` of the same closure to the same nginx (with a
// netrc file, as Nix users do). Wall time beside CPU seconds (GNU time: user + system of the
// command and its children), medians of the rounds.
//   node --import tsx bench/http.bench.ts [--rounds 3] [--upload-threads N] [--small]
// Bar: loft's wall time <= nix copy's. Both sides run warm (every file read once first). Deletes
// its store paths, temp files and nginx at the end, also on failure.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomSalt } from '../test/helpers/fixtures.js';
import { nixBin } from '../test/helpers/nix-env.js';
import { startNginx, type TestNginx } from '../test/helpers/nginx-server.js';
import { buildBenchClosure, deleteWithDerivers, warmPageCache, nixEnv } from './lib/bench-closure.js';
import { generateSigningKey, runLoftUpload, type LoftRun } from './lib/loft-runs.js';
import { median, runTimed, type TimedRun } from './lib/timed-command.js';

const MiB = 1024 * 1024;
const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'upload-threads': { type: 'string' },
    /** A tiny closure, to check the bench itself quickly. */
    small: { type: 'boolean', default: false },
  },
});
const rounds = Number(opt.rounds);
const smallArgs = ['--arg', 'perLayer', '5', '--arg', 'randomBigMb', '8', '--arg', 'textBigMb', '20'];

const rows: string[] = [];
const row = (what: string, value: string, bar = ''): void =>
  void rows.push(`| ${what} | ${value} | ${bar} |`);
const wall = (runs: TimedRun[]): number => median(runs.map((r) => r.seconds));
const cpu = (runs: TimedRun[]): number => median(runs.map((r) => r.cpuSeconds));
const list = (runs: TimedRun[], f: (r: TimedRun) => number): string =>
  runs.map((r) => f(r).toFixed(2)).join(', ');
const describeRuns = (runs: TimedRun[], narMiB: number): string =>
  `${wall(runs).toFixed(2)} s wall (runs: ${list(runs, (r) => r.seconds)}), ${cpu(runs).toFixed(2)} CPU-s ` +
  `(runs: ${list(runs, (r) => r.cpuSeconds)}), ${(narMiB / wall(runs)).toFixed(0)} MiB/s of NAR, ` +
  `peak RSS ${(Math.max(...runs.map((r) => r.maxRssKb)) / 1024).toFixed(0)} MB`;

/** A loft.toml for `url` with Basic auth from a password file. */
function loftConfig(dir: string, url: string, nginx: TestNginx, keyPath: string): string {
  mkdirSync(dir, { recursive: true });
  const sub = dir;
  writeFileSync(join(sub, 'pw'), `${nginx.password}\n`, { mode: 0o600 });
  const lines = [
    '[http]',
    `url = "${url}"`,
    `user = "${nginx.user}"`,
    'password_file = "pw"',
    '[loft]',
    `local_cache_path = "${join(sub, 'cache.db')}"`,
    `signing_key_path = "${keyPath}"`,
    'skip_signed_by_keys = []',
    ...(opt['upload-threads'] ? [`upload_threads = ${opt['upload-threads']}`] : []),
  ];
  writeFileSync(join(sub, 'loft.toml'), `${lines.join('\n')}\n`, { mode: 0o600 });
  return join(sub, 'loft.toml');
}

async function nixCopy(url: string, root: string, keyPath: string, netrc: string): Promise<TimedRun> {
  return runTimed(
    'nix',
    [
      '--extra-experimental-features',
      'nix-command',
      '--option',
      'netrc-file',
      netrc,
      'copy',
      '--to',
      `${url}?compression=zstd&secret-key=${keyPath}`,
      '--',
      root,
    ],
    { env: nixEnv() },
  );
}

async function machineFacts(): Promise<void> {
  const nixVersion = (await nixBin(['nix', '--version'])).stdout.trim();
  const nginxVersion = (await runTimed('/usr/sbin/nginx', ['-v'])).stderr.trim();
  row(
    'machine',
    `nproc ${cpus().length} (${cpus()[0]?.model ?? '?'}), memory ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
      `load average at start ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}, node ${process.version}, ${nixVersion}, ${nginxVersion}`,
  );
  row('page cache', 'warm for every measured run: each file read once before; no drop_caches');
  row(
    'settings',
    `zstd level 3 on both sides; loft upload_threads ${opt['upload-threads'] ?? '12 (default)'}; Basic auth on writes`,
  );
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'loft-http-bench-'));
  const toDelete: string[] = [];
  let nginx: TestNginx | undefined;
  try {
    await machineFacts();
    const closure = await buildBenchClosure(randomSalt(), opt.small ? smallArgs : []);
    toDelete.push(...[...closure.paths].reverse());
    const narMiB = closure.narTotal / MiB;
    row('closure', `${closure.narSizes.size} paths, NAR total ${narMiB.toFixed(0)} MiB (sum of narSize)`);
    const keyPath = join(tmp, 'signing-key');
    generateSigningKey(keyPath);
    nginx = await startNginx();
    const netrc = join(tmp, 'netrc');
    writeFileSync(netrc, `machine 127.0.0.1 login ${nginx.user} password ${nginx.password}\n`, {
      mode: 0o600,
    });
    await warmPageCache(closure.paths);
    const loft: LoftRun[] = [];
    const nix: TimedRun[] = [];
    for (let i = 1; i <= rounds; i++) {
      const cfg = loftConfig(join(tmp, `loft-${i}`), `${nginx.origin}/cache/loft-${i}`, nginx, keyPath);
      loft.push(await runLoftUpload(cfg, closure.root));
      nix.push(await nixCopy(`${nginx.origin}/cache/nix-${i}`, closure.root, keyPath, netrc));
    }
    row('A. loft --upload-path ROOT -> nginx ([http], chunked PUTs)', describeRuns(loft, narMiB));
    row('B. nix copy --to http://nginx/...?compression=zstd ROOT', describeRuns(nix, narMiB));
    const ratio = wall(loft) / wall(nix);
    row('ratio A / B, wall', ratio.toFixed(2), `<= 1.0 ${ratio <= 1.0 ? 'ok' : 'MISSED'}`);
    row('ratio A / B, CPU seconds', (cpu(loft) / cpu(nix)).toFixed(2));
    row('paths uploaded by loft (first round)', `${loft[0]!.uploaded} of ${closure.narSizes.size}`);
  } finally {
    console.log(
      `\nHTTP cache benchmark (${rounds} rounds, medians)\n\n| measure | value | bar |\n|---|---|---|\n${rows.join('\n')}`,
    );
    await nginx?.close().catch(() => undefined);
    const left = await deleteWithDerivers(toDelete);
    if (left.length > 0) console.error(`could not delete ${left.length} store paths, e.g. ${left[0]}`);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
