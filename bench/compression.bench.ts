// Throughput, ratio and peak memory of the NAR compressors on mixed data: half incompressible
// (random), half real executables from /usr/bin, interleaved in 1 MiB pieces the way a store path
// mixes binaries with already-compressed files. Each case runs in its own child process so its
// peak RSS is its own. The CLI rows run the Debian `zstd`/`xz` on the same bytes from a temp file,
// as a reference for what the native code can do on this machine.
//
//   node --import tsx bench/compression.bench.ts            all cases, markdown table on stdout
//   node --import tsx bench/compression.bench.ts zstd:3:2:200   one case (kind:level:threads:MB)
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { Compression } from '../src/format/bucket-layout.js';
import { createCompressor } from '../src/upload/compression.js';
import { readBinaries } from './lib/binaries.js';

const MB = 1_000_000;
const PIECE = 1 << 20;
const CASES = ['zstd:3:1:200', 'zstd:3:2:200', 'cli-zstd:3:2:200', 'xz:6:1:50', 'xz:6:2:50', 'cli-xz:6:2:50'];

interface Result {
  kind: string;
  level: number;
  threads: number;
  inputBytes: number;
  outputBytes: number;
  seconds: number;
  rssBaseMB: number;
  rssPeakMB: number;
}

function* mixedPieces(total: number, random: Buffer, binary: Buffer): Generator<Buffer> {
  // The random pool (32 MiB) is reused cyclically: far beyond zstd's and xz's match windows at
  // these levels, so it stays incompressible.
  let r = 0;
  let b = 0;
  for (let sent = 0, i = 0; sent < total; i++) {
    const n = Math.min(PIECE, total - sent);
    const pool = i % 2 === 0 ? random : binary;
    let off = i % 2 === 0 ? r : b;
    if (off + n > pool.length) off = 0;
    yield pool.subarray(off, off + n);
    if (i % 2 === 0) r = off + n;
    else b = off + n;
    sent += n;
  }
}

async function runCase(spec: string): Promise<Result> {
  const [kind = 'zstd', level = '3', threads = '1', mb = '200'] = spec.split(':');
  const total = Number(mb) * MB;
  const data = [...mixedPieces(total, randomBytes(32 * PIECE), readBinaries(Math.min(total / 2, 100 * MB)))];
  const rssBase = process.memoryUsage().rss;
  let rssPeak = rssBase;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 10);
  const start = process.hrtime.bigint();
  const outputBytes = kind.startsWith('cli-')
    ? runCli(kind.slice(4), Number(level), Number(threads), data)
    : await runOurs(kind as Compression, Number(level), Number(threads), data);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  clearInterval(sampler);
  // The sampler cannot run while zstd blocks the event loop; the kernel's high-water mark covers that.
  rssPeak = Math.max(rssPeak, process.resourceUsage().maxRSS * 1024);
  const r = { kind, level: Number(level), threads: Number(threads), inputBytes: total, outputBytes, seconds };
  return { ...r, rssBaseMB: rssBase / MB, rssPeakMB: rssPeak / MB };
}

async function runOurs(kind: Compression, level: number, threads: number, data: Buffer[]): Promise<number> {
  let outputBytes = 0;
  await pipeline(
    Readable.from(data),
    createCompressor(kind, { level, threads }),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        outputBytes += chunk.length;
        cb();
      },
    }),
  );
  return outputBytes;
}

/** The Debian CLI on the same bytes; the time includes writing them to a (page-cached) temp file. */
function runCli(tool: string, level: number, threads: number, data: Buffer[]): number {
  const dir = mkdtempSync(join(tmpdir(), 'loft-bench-'));
  try {
    const file = join(dir, 'input');
    writeFileSync(file, Buffer.concat(data));
    const out = spawnSync(tool, [`-${level}`, `-T${threads}`, '-c', file], { maxBuffer: 1 << 30 });
    if (out.status !== 0) throw new Error(`${tool} failed: ${out.stderr.toString()}`);
    return out.stdout.length;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function row(r: Result): string {
  const cells = [
    r.kind,
    String(r.level),
    String(r.threads),
    (r.inputBytes / MB).toFixed(0),
    (r.outputBytes / MB).toFixed(1),
    (r.inputBytes / r.outputBytes).toFixed(3),
    r.seconds.toFixed(2),
    (r.inputBytes / MB / r.seconds).toFixed(1),
    r.kind.startsWith('cli-') ? '-' : r.rssPeakMB.toFixed(0),
    r.kind.startsWith('cli-') ? '-' : (r.rssPeakMB - r.rssBaseMB).toFixed(0),
  ];
  return `| ${cells.join(' | ')} |`;
}

async function main(): Promise<void> {
  const spec = process.argv[2];
  if (spec !== undefined) {
    process.stdout.write(JSON.stringify(await runCase(spec)) + '\n');
    return;
  }
  const self = fileURLToPath(import.meta.url);
  console.log(
    '| codec | level | threads | input MB | output MB | ratio | seconds | MB/s | peak RSS MB | peak over baseline MB |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const c of CASES) {
    const child = spawnSync(process.execPath, [...process.execArgv, self, c], { encoding: 'utf8' });
    if (child.status !== 0) throw new Error(`case ${c} failed: ${child.stderr}`);
    console.log(row(JSON.parse(child.stdout) as Result));
  }
  console.log(
    '\nPeak RSS: the process high-water mark (input in memory included); baseline: RSS once the input was built.',
  );
  console.log(
    "CLI rows: the time includes writing the input to a temp file; the CLI's memory is not measured.",
  );
}

await main();
