// The least a Node.js program does to turn store paths into the files `nix copy --to
// file://DIR?compression=zstd` writes, for bench/floor.bench.ts: the NAR of each path, its sha256,
// zstd at level 3, the sha256 of the compressed bytes, the file written and renamed into place, and a
// narinfo. Everything is synchronous on one thread, with one zstd context reused for every NAR (Nix
// 2.8's libarchive streams each NAR through one context too): no streams, promises, thread pool,
// memory pools, state, signatures, build logs or fsync. What it costs is what the runtime costs
// for the bytes alone; whatever loft spends beyond it is its own.
//   node bench/lib/sync-floor.ts OUT_DIR PATH_LIST [THREADS]
// PATH_LIST holds one store path per line. Prints "PATH NARHASH_HEX NARSIZE" per path, for the
// bench to check against Nix's own NarHash. With THREADS above 1, that many worker threads each run
// the same synchronous loop, taking the next path of the list whenever they finish one: the floor
// with every core busy, which is what a program pays that uses the cores as loft does (a list
// ordered largest first keeps the threads busy to the end).
//
// node:zlib has no public synchronous streaming call: zstdCompressSync makes a fresh context per
// call, and a stream's synchronous _processChunk closes the stream after one call. So this drives
// the stream's native handle as node:zlib's own synchronous path does (writeSync, then the two
// numbers left in _writeState); a Node that changes it makes this script fail, not lie.
import { createHash, type Hash } from 'node:crypto';
import {
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  readlinkSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { isMainThread, parentPort, threadId, Worker, workerData } from 'node:worker_threads';
import { constants, createZstdCompress } from 'node:zlib';

interface ZstdHandle {
  writeSync(
    flush: number,
    input: Buffer,
    inOff: number,
    inLen: number,
    out: Buffer,
    outOff: number,
    outLen: number,
  ): void;
}

/** What each worker thread is given: the same list, and the index of the next path to take. */
interface FloorJob {
  outDir: string;
  paths: string[];
  next: Int32Array;
}

function readJob(): { job: FloorJob; threads: number } {
  const [outDir, listFile, threadsArg = '1'] = process.argv.slice(2);
  const threads = Number(threadsArg);
  if (outDir === undefined || listFile === undefined || !Number.isInteger(threads) || threads < 1) {
    console.error('usage: node bench/lib/sync-floor.ts OUT_DIR PATH_LIST [THREADS]');
    process.exit(2);
  }
  const paths = readFileSync(listFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  return { job: { outDir, paths, next: new Int32Array(new SharedArrayBuffer(4)) }, threads };
}

const stream = createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: 3 } }) as unknown as {
  _handle?: ZstdHandle;
  _writeState?: Uint32Array;
};
const handle = stream._handle;
const state = stream._writeState;
if (handle === undefined || state === undefined || typeof handle.writeSync !== 'function') {
  console.error("this Node's node:zlib has no synchronous zstd handle: the floor cannot be measured");
  process.exit(3);
}

/** Where the NAR is assembled: headers, small files and reads of large files go straight in. */
const STAGE_BYTES = 1024 * 1024;
const stage = Buffer.allocUnsafe(STAGE_BYTES);
let staged = 0;
const compressed = Buffer.allocUnsafe(1024 * 1024);
const ZEROS = Buffer.alloc(8);

/** The NAR being written: its hash and size, and the compressed file's. */
let narHash: Hash = createHash('sha256');
let narSize = 0;
let fileHash: Hash = createHash('sha256');
let fileSize = 0;
let outFd = -1;

/** Compresses `input` into the file; ZSTD_e_end closes the NAR's frame. */
function compress(input: Buffer, flush: number): void {
  let inOff = 0;
  let inLen = input.length;
  for (;;) {
    handle!.writeSync(flush, input, inOff, inLen, compressed, 0, compressed.length);
    const [outLeft, inLeft] = [state![0]!, state![1]!];
    const produced = compressed.length - outLeft;
    if (produced > 0) {
      const piece = compressed.subarray(0, produced);
      fileHash.update(piece);
      writeSync(outFd, piece);
      fileSize += produced;
    }
    inOff += inLen - inLeft;
    inLen = inLeft;
    // Done once the input is taken and zstd left room in the output (nothing more to flush).
    if (inLen === 0 && outLeft !== 0) return;
  }
}

function drain(): void {
  if (staged === 0) return;
  const bytes = stage.subarray(0, staged);
  narHash.update(bytes);
  narSize += staged;
  compress(bytes, constants.ZSTD_e_continue);
  staged = 0;
}

function put(b: Buffer): void {
  if (b.length > STAGE_BYTES - staged) drain();
  if (b.length > STAGE_BYTES) {
    narHash.update(b);
    narSize += b.length;
    compress(b, constants.ZSTD_e_continue);
    return;
  }
  b.copy(stage, staged);
  staged += b.length;
}

function u64(n: number): void {
  if (8 > STAGE_BYTES - staged) drain();
  stage.writeUInt32LE(n % 0x100000000, staged);
  stage.writeUInt32LE(Math.floor(n / 0x100000000), staged + 4);
  staged += 8;
}

function str(s: string | Buffer): void {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  u64(b.length);
  put(b);
  const pad = (8 - (b.length % 8)) % 8;
  if (pad > 0) put(ZEROS.subarray(0, pad));
}

function regular(path: Buffer, size: number): void {
  const fd = openSync(path, 'r');
  try {
    let offset = 0;
    while (offset < size) {
      if (staged === STAGE_BYTES) drain();
      const n = readSync(fd, stage, staged, Math.min(STAGE_BYTES - staged, size - offset), offset);
      if (n === 0) throw new Error(`${path.toString()} shrank while being read`);
      staged += n;
      offset += n;
    }
  } finally {
    closeSync(fd);
  }
  const pad = (8 - (size % 8)) % 8;
  if (pad > 0) put(ZEROS.subarray(0, pad));
}

const SLASH = Buffer.from('/');

/** Paths are bytes, as Nix's names are: a name need not be UTF-8. */
function dump(path: Buffer): void {
  const st = lstatSync(path);
  str('(');
  str('type');
  if (st.isSymbolicLink()) {
    str('symlink');
    str('target');
    str(readlinkSync(path, { encoding: 'buffer' }));
  } else if (st.isFile()) {
    str('regular');
    if ((st.mode & 0o100) !== 0) {
      str('executable');
      str('');
    }
    str('contents');
    u64(st.size);
    regular(path, st.size);
  } else if (st.isDirectory()) {
    str('directory');
    // Nix sorts names bytewise.
    const names = readdirSync(path, { encoding: 'buffer' }).sort((x, y) => Buffer.compare(x, y));
    for (const name of names) {
      str('entry');
      str('(');
      str('name');
      str(name);
      str('node');
      dump(Buffer.concat([path, SLASH, name]));
      str(')');
    }
  } else {
    throw new Error(`${path.toString()}: a node a NAR cannot hold`);
  }
  str(')');
}

/** Writes one path's NAR file and narinfo; returns the line printed for it. */
function floorPath(outDir: string, path: string): string {
  narHash = createHash('sha256');
  fileHash = createHash('sha256');
  narSize = 0;
  fileSize = 0;
  // Unique per thread and per process: the bench runs two of these programs into one directory.
  const temp = join(outDir, 'nar', `.partial-${process.pid}-${threadId}`);
  outFd = openSync(temp, 'w');
  str('nix-archive-1');
  dump(Buffer.from(path));
  drain();
  compress(Buffer.alloc(0), constants.ZSTD_e_end);
  closeSync(outFd);
  const file = fileHash.digest('hex');
  const nar = narHash.digest('hex');
  renameSync(temp, join(outDir, 'nar', `${file}.nar.zst`));
  writeFileSync(
    join(outDir, `${basename(path).slice(0, 32)}.narinfo`),
    `StorePath: ${path}\nURL: nar/${file}.nar.zst\nCompression: zstd\nFileHash: sha256:${file}\n` +
      `FileSize: ${fileSize}\nNarHash: sha256:${nar}\nNarSize: ${narSize}\n`,
  );
  return `${path} ${nar} ${narSize}`;
}

/** Takes paths from the list until none is left. */
function runLoop({ outDir, paths, next }: FloorJob): string[] {
  const out: string[] = [];
  for (let i = Atomics.add(next, 0, 1); i < paths.length; i = Atomics.add(next, 0, 1)) {
    out.push(floorPath(outDir, paths[i]!));
  }
  return out;
}

if (!isMainThread) {
  parentPort!.postMessage(runLoop(workerData as FloorJob));
} else {
  const { job, threads } = readJob();
  mkdirSync(join(job.outDir, 'nar'), { recursive: true });
  if (threads === 1) {
    console.log(runLoop(job).join('\n'));
  } else {
    const lines = await Promise.all(
      Array.from(
        { length: threads },
        () =>
          new Promise<string[]>((resolve, reject) => {
            const worker = new Worker(new URL(import.meta.url), { workerData: job });
            worker.once('message', resolve);
            worker.once('error', reject);
            worker.once('exit', (code) =>
              reject(new Error(`a floor thread ended without its result (exit code ${code})`)),
            );
          }),
      ),
    );
    console.log(lines.flat().join('\n'));
  }
}
