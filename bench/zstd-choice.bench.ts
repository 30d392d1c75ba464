// Which zstd compressor loft uses: node:zlib's (Node >= 22.15, compresses on libuv's thread pool),
// zstd-napi's CompressStream in the main thread (synchronous: what loft does today), or zstd-napi
// on worker threads, one stream per worker (what a compute pool would do). Same bytes, same level,
// one stream and several at once (loft compresses several NARs side by side). Each case runs in
// its own child process, so wall time, CPU seconds (user + sys of every thread, workers included)
// and peak RSS are its own. Speed decides; a tie goes to node:zlib, which needs no native addon.
//
// zstd-napi is no longer one of loft's dependencies: to compare, install it beside the checkout
// first (`npm install --no-save zstd-napi`); without it only the node:zlib rows are measured.
//
//   npm run bench -- zstd-choice                                      all cases, markdown table
//   node --import tsx bench/zstd-choice.bench.ts zlib:2:400            one case (impl:streams:MB)
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { readBinaries } from './lib/binaries.js';

const MB = 1_000_000;
const PIECE = 1 << 20;
const LEVEL = 3;
const TOTAL_MB = 400;
const CASES = [
  'zlib:1',
  'napi:1',
  'napi-worker:1',
  'zlib:2',
  'napi:2',
  'napi-worker:2',
  'zlib:4',
  'napi:4',
  'napi-worker:4',
];
const DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib', '/usr/bin', '/usr/libexec'];

function compressor(impl: string): Transform {
  if (impl === 'zlib') {
    return zlib.createZstdCompress({
      chunkSize: PIECE,
      params: { [zlib.constants.ZSTD_c_compressionLevel]: LEVEL, [zlib.constants.ZSTD_c_checksumFlag]: 1 },
    });
  }
  const { CompressStream } = createRequire(import.meta.url)('zstd-napi') as {
    CompressStream: new (o: object) => Transform;
  };
  return new CompressStream({ compressionLevel: LEVEL, nbWorkers: 0, checksumFlag: true });
}

async function compressOnce(data: Buffer, impl: string): Promise<number> {
  let out = 0;
  const pieces = function* () {
    for (let i = 0; i < data.length; i += PIECE) yield data.subarray(i, i + PIECE);
  };
  await pipeline(
    Readable.from(pieces()),
    compressor(impl),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        out += chunk.length;
        cb();
      },
    }),
  );
  return out;
}

/**
 * One stream on a worker thread: it gets its share of the bytes up front, then compresses on "go".
 * The share is copied into an ArrayBuffer of its own and transferred, as a compute pool would hand
 * a frame over. (Earlier rounds passed a view of the whole input as workerData: structured cloning
 * copies a view's entire ArrayBuffer, so every worker held a private copy of all 400 MB, whose
 * release the garbage collector did while the streams were being timed.)
 */
function onWorker(share: Uint8Array): { ready: Promise<void>; run: () => Promise<number> } {
  const own = new Uint8Array(share).buffer; // a copy of just the share
  const worker = new Worker(new URL(import.meta.url), {
    workerData: own,
    transferList: [own],
    execArgv: ['--import', 'tsx'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  const run = () =>
    new Promise<number>((resolve, reject) => {
      worker.once('message', (size: number) => {
        void worker.terminate();
        resolve(size);
      });
      worker.once('error', reject);
      worker.postMessage('go');
    });
  return { ready, run };
}

async function workerMain(): Promise<void> {
  const share = Buffer.from(workerData as ArrayBuffer); // a view of the transferred memory, no copy
  parentPort?.postMessage('ready');
  await new Promise((resolve) => parentPort?.once('message', resolve));
  parentPort?.postMessage(await compressOnce(share, 'napi'));
}

async function child(spec: string): Promise<void> {
  const [impl = 'zlib', streamsText = '1', mbText = String(TOTAL_MB)] = spec.split(':');
  const streams = Number(streamsText);
  // Every stream gets its own share of the bytes, so the total work is the same in every case.
  const data = readBinaries(Number(mbText) * MB, DIRS);
  const share = Math.ceil(data.length / streams);
  const shares = Array.from({ length: streams }, (_, i) => data.subarray(i * share, (i + 1) * share));
  const workers = impl === 'napi-worker' ? shares.map((s) => onWorker(s)) : [];
  await Promise.all(workers.map((w) => w.ready));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const outs = await Promise.all(
    impl === 'napi-worker' ? workers.map((w) => w.run()) : shares.map((s) => compressOnce(s, impl)),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const result = {
    impl,
    streams,
    inputMB: data.length / MB,
    ratio: data.length / outs.reduce((a, b) => a + b, 0),
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    rssPeakMB: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(JSON.stringify(result));
}

const NAMES: Record<string, string> = {
  zlib: 'node:zlib createZstdCompress (thread pool)',
  napi: 'zstd-napi CompressStream (main thread)',
  'napi-worker': 'zstd-napi CompressStream (a worker thread each)',
};

function hasZstdNapi(): boolean {
  try {
    createRequire(import.meta.url).resolve('zstd-napi');
    return true;
  } catch {
    return false;
  }
}

function parent(): void {
  const cases = hasZstdNapi() ? CASES : CASES.filter((c) => c.startsWith('zlib'));
  if (cases.length < CASES.length) process.stderr.write('zstd-napi is not installed: node:zlib rows only\n');
  const rows: string[] = [];
  rows.push('| compressor | streams | input MB | ratio | wall s | CPU s (user+sys) | MB/s | peak RSS MB |');
  rows.push('|---|---|---|---|---|---|---|---|');
  const rounds = Number(process.env.ROUNDS ?? 3);
  for (const spec of cases) {
    const runs: Array<Record<string, number | string>> = [];
    for (let r = 0; r < rounds; r++) {
      const res = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), spec], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      });
      if (res.status !== 0) throw new Error(`case ${spec} failed: ${res.stderr}`);
      runs.push(JSON.parse(res.stdout) as Record<string, number | string>);
    }
    runs.sort((a, b) => Number(a.seconds) - Number(b.seconds));
    const m = runs[Math.floor(runs.length / 2)] ?? {};
    const name = NAMES[String(m.impl)] ?? String(m.impl);
    const mbps = Number(m.inputMB) / Number(m.seconds);
    rows.push(
      `| ${name} | ${m.streams} | ${Number(m.inputMB).toFixed(0)} | ${Number(m.ratio).toFixed(2)} | ${Number(m.seconds).toFixed(2)} | ${Number(m.cpuSeconds).toFixed(2)} | ${mbps.toFixed(0)} | ${Number(m.rssPeakMB).toFixed(0)} |`,
    );
    process.stderr.write(`${spec}: ${JSON.stringify(runs.map((r) => Number(r.seconds).toFixed(2)))}\n`);
  }
  process.stdout.write(
    `zstd level ${LEVEL}, Node ${process.version}, medians of ${rounds} (by wall time)\n\n`,
  );
  process.stdout.write(`${rows.join('\n')}\n`);
}

const spec = process.argv[2];
if (!isMainThread) await workerMain();
else if (spec) await child(spec);
else parent();
