// NAR writer benchmark: loft's encodeNar + sha256 against `nix hash path` (Nix's NAR writer and
// sha256) and `nix-store --dump` on the same store path, and the peak memory of loft's writer on
// one 2 GiB file.
//   node --import tsx bench/nar.bench.ts [--tree-mb 1024] [--small 20000] [--rss-gb 2]
// Bars (issue 13): loft / `nix hash path` >= 1.0; peak RSS <= 100 MB. The ratios against
// `nix-store --dump` (which does not hash) are reported without a bar. loft's side gives each chunk
// back once hashed, as an upload's compressor does (see ours()); A' reads into fresh memory instead.
// Creates its files in a temp dir and one store path, and removes both at the end.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NarMemory } from '../src/chunk-pool.js';
import { encodeNar } from '../src/format/nar-writer.js';
import { fsNarSource } from '../src/store/nar-source-fs.js';
import { nixEnv } from '../test/helpers/nix-env.js';

const MiB = 1024 * 1024;

/** Writes `bytes` of incompressible-looking data: a random block, a little changed per write. */
function writeBigFile(path: string, bytes: number): void {
  const block = randomBytes(4 * MiB);
  const fd = openSync(path, 'w');
  try {
    for (let done = 0, i = 0; done < bytes; i++) {
      block.writeUInt32LE(i, 0);
      const n = Math.min(block.length, bytes - done);
      writeSync(fd, block, 0, n);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

function makeTree(root: string, bigMb: number, smallCount: number): number {
  mkdirSync(join(root, 'big'), { recursive: true });
  const bigFiles = 4;
  for (let i = 0; i < bigFiles; i++)
    writeBigFile(join(root, 'big', `blob${i}`), Math.ceil((bigMb * MiB) / bigFiles));
  let total = bigFiles * Math.ceil((bigMb * MiB) / bigFiles);
  for (let i = 0; i < smallCount; i++) {
    const dir = join(root, 'small', `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) mkdirSync(dir, { recursive: true });
    const data = randomBytes((i * 7919) % 6000);
    writeFileSync(join(dir, `f${i}`), data);
    if (i % 13 === 0) chmodSync(join(dir, `f${i}`), 0o755);
    total += data.length;
  }
  return total;
}

/**
 * loft's NAR writer over `path`. By default its chunks are lent from a NarMemory and given back once
 * hashed, as in an upload, where the zstd compressor reports them once copied into its frame
 * (src/chunk-pool.ts), so the reader reuses its buffers; `keep` reads into fresh memory instead.
 */
async function ours(
  path: string,
  { hash = true, keep = false } = {},
): Promise<{ seconds: number; bytes: number; sha256: string }> {
  const start = process.hrtime.bigint();
  const h = createHash('sha256');
  let bytes = 0;
  const memory = keep ? undefined : new NarMemory();
  for await (const chunk of encodeNar(fsNarSource(memory ? { memory } : {}), Buffer.from(path))) {
    if (hash) h.update(chunk);
    bytes += chunk.length;
    memory?.giveBack(chunk);
  }
  const sha256 = h.digest('hex');
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, bytes, sha256 };
}

/** `nix hash path`: Nix's own NAR serialisation plus sha256, like ours. */
function nixHashPath(path: string): number {
  const start = process.hrtime.bigint();
  execFileSync(
    'nix',
    ['--extra-experimental-features', 'nix-command', 'hash', 'path', '--type', 'sha256', '--', path],
    { env: nixEnv(), stdio: 'ignore' },
  );
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function nixDump(path: string): Promise<number> {
  const start = process.hrtime.bigint();
  const devNull = openSync('/dev/null', 'w');
  try {
    const child = spawn('nix-store', ['--dump', '--', path], {
      env: nixEnv(),
      stdio: ['ignore', devNull, 'inherit'],
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (code !== 0) throw new Error(`nix-store --dump exited with ${code}`);
  } finally {
    closeSync(devNull);
  }
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** The ceiling for ours: node's sha256 over 1 MiB buffers already in memory. */
function sha256Speed(): number {
  const buf = randomBytes(MiB);
  const start = process.hrtime.bigint();
  const h = createHash('sha256');
  for (let i = 0; i < 512; i++) h.update(buf);
  h.digest();
  return 512 / (Number(process.hrtime.bigint() - start) / 1e9);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Bundles this file to plain JavaScript (esbuild, which tsx brings along) so the child measures
 * loft's writer on bare node, not tsx's loader (which alone holds about 30 MB more).
 */
async function bundleSelf(outDir: string): Promise<string> {
  const esbuild = await import('esbuild');
  const outfile = join(outDir, 'nar-bench-child.mjs');
  await esbuild.build({
    entryPoints: [fileURLToPath(import.meta.url)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile,
    logLevel: 'error',
  });
  return outfile;
}

/** Runs the bundled bench in a child that dumps `path` (none: stays idle) and reports its peak RSS. */
function childPeakRss(script: string, path: string | undefined): { hwmKb: number; bytes: number } {
  const out = execFileSync(process.execPath, [script, '--rss-child', path ?? ''], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as { hwmKb: number; bytes: number };
}

async function rssChild(path: string): Promise<void> {
  const bytes = path === '' ? 0 : (await ours(path)).bytes;
  const status = (await import('node:fs')).readFileSync('/proc/self/status', 'utf8');
  const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
  const hwmKb = hwm ? Number(hwm[1]) : process.resourceUsage().maxRSS;
  console.log(JSON.stringify({ hwmKb, bytes }));
}

/**
 * Empties the page cache (root only), so both sides read from disk as after a reboot or on a store
 * larger than memory. Returns false where the kernel does not allow it.
 */
function dropCaches(): boolean {
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

/** One cold run of each side (the page cache emptied before each), when the kernel allows it. */
async function coldRuns(storePath: string): Promise<{ ours: number; nix: number } | undefined> {
  if (!dropCaches()) return undefined;
  const ours_ = (await ours(storePath)).seconds;
  dropCaches();
  const nix = await nixDump(storePath);
  return { ours: ours_, nix };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'tree-mb': { type: 'string', default: '1024' },
      small: { type: 'string', default: '20000' },
      'rss-gb': { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      'rss-child': { type: 'string' },
    },
  });
  if (values['rss-child'] !== undefined) return rssChild(values['rss-child']);
  const tmp = mkdtempSync(join(tmpdir(), 'loft-nar-bench-'));
  let storePath: string | undefined;
  try {
    const treeDir = join(tmp, 'loft-bench-tree');
    const payload = makeTree(treeDir, Number(values['tree-mb']), Number(values.small));
    storePath = execFileSync('nix-store', ['--add', '--', treeDir], {
      env: nixEnv(),
      encoding: 'utf8',
    }).trim();
    rmSync(treeDir, { recursive: true, force: true });
    const reference = execFileSync('nix-store', ['--query', '--hash', '--', storePath], {
      env: nixEnv(),
      encoding: 'utf8',
    }).trim();
    await nixDump(storePath); // warm the page cache for both sides
    const oursS: number[] = [];
    const keptS: number[] = [];
    const rawS: number[] = [];
    const nixS: number[] = [];
    const nixHashS: number[] = [];
    let narBytes = 0;
    let narSha = '';
    for (let i = 0; i < Number(values.rounds); i++) {
      rawS.push((await ours(storePath, { hash: false })).seconds);
      keptS.push((await ours(storePath, { keep: true })).seconds);
      const r = await ours(storePath);
      oursS.push(r.seconds);
      narBytes = r.bytes;
      narSha = r.sha256;
      nixS.push(await nixDump(storePath));
      nixHashS.push(nixHashPath(storePath));
    }
    const shaNix32 = execFileSync(
      'nix',
      ['--extra-experimental-features', 'nix-command', 'hash', 'to-base32', '--type', 'sha256', narSha],
      { env: nixEnv(), encoding: 'utf8' },
    ).trim();
    const cold = await coldRuns(storePath);
    const oursMBs = narBytes / MiB / median(oursS);
    const nixMBs = narBytes / MiB / median(nixS);
    const nixHashMBs = narBytes / MiB / median(nixHashS);
    const rawMBs = narBytes / MiB / median(rawS);

    const bigFile = join(tmp, 'one-big-file');
    writeBigFile(bigFile, Number(values['rss-gb']) * 1024 * MiB);
    const script = await bundleSelf(tmp);
    const baseline = childPeakRss(script, undefined);
    const peak = childPeakRss(script, bigFile);
    rmSync(bigFile, { force: true });

    const ratio = oursMBs / nixMBs;
    const peakMb = peak.hwmKb / 1024;
    console.log(
      `\nNAR of ${storePath} (${(narBytes / MiB).toFixed(0)} MiB NAR, ${(payload / MiB).toFixed(0)} MiB payload, ${values.small} small files), median of ${values.rounds} warm runs`,
    );
    console.log(
      `NarHash matches nix-store -q --hash: ${`sha256:${shaNix32}` === reference ? 'yes' : `NO (${shaNix32} vs ${reference})`}\n`,
    );
    console.log('| measure | value | bar |');
    console.log('|---|---|---|');
    const sha = sha256Speed();
    const mbs = (v: number, sec: number[]): string => `${v.toFixed(0)} MB/s (${median(sec).toFixed(2)} s)`;
    const bar = (r: number): string => `>= 1.0 ${r >= 1.0 ? 'ok' : 'MISSED'}`;
    console.log(
      `| A. loft encodeNar + sha256, chunks given back as in an upload | ${mbs(oursMBs, oursS)} | |`,
    );
    console.log(
      `| A'. the same, every chunk left to the garbage collector | ${mbs(narBytes / MiB / median(keptS), keptS)} | |`,
    );
    console.log(`| B. nix-store --dump > /dev/null | ${mbs(nixMBs, nixS)} | |`);
    console.log(
      `| ratio A / B | ${ratio.toFixed(2)} | (ceiling here: sha256 alone / B = ${(sha / nixMBs).toFixed(2)}) |`,
    );
    console.log(`| C. nix hash path (Nix's NAR + sha256) | ${mbs(nixHashMBs, nixHashS)} | |`);
    console.log(
      `| ratio A / C (both hash) | ${(oursMBs / nixHashMBs).toFixed(2)} | ${bar(oursMBs / nixHashMBs)} |`,
    );
    console.log(`| D. loft encodeNar alone, no hash | ${mbs(rawMBs, rawS)} | |`);
    console.log(`| ratio D / B (neither hashes) | ${(rawMBs / nixMBs).toFixed(2)} | |`);
    if (cold) {
      const a = narBytes / MiB / cold.ours;
      const b = narBytes / MiB / cold.nix;
      console.log(`| A cold (page cache dropped first) | ${mbs(a, [cold.ours])} | |`);
      console.log(`| B cold (page cache dropped first) | ${mbs(b, [cold.nix])} | |`);
      console.log(`| ratio A / B, cold | ${(a / b).toFixed(2)} | |`);
    } else {
      console.log('| cold runs | not measured: /proc/sys/vm/drop_caches is not writable here | |');
    }
    console.log(`| sha256 alone in this node, 1 MiB updates | ${sha.toFixed(0)} MB/s | |`);
    console.log(
      `| peak RSS, NAR of one ${values['rss-gb']} GiB file (VmHWM) | ${peakMb.toFixed(0)} MB (bare node idle: ${(baseline.hwmKb / 1024).toFixed(0)} MB) | <= 100 MB ${peakMb <= 100 ? 'ok' : 'MISSED'} |`,
    );
  } finally {
    if (storePath !== undefined) {
      try {
        execFileSync('nix-store', ['--delete', '--', storePath], { env: nixEnv(), stdio: 'ignore' });
      } catch {
        console.error(`could not delete ${storePath}; the next nix-collect-garbage will`);
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
