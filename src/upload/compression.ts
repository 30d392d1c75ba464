// Streaming compressors for NAR files. Nix's binary cache store reads `Compression: zstd`, `xz` and
// `none` (and accepts multi-threaded zstd frames without a content size), so these are the three we
// write. Each compressor is a Transform with real backpressure: memory stays bounded by the codec's
// own window and job buffers however large the NAR is and however slow the upload is.
//
// zstd is node:zlib's (Node >= 22.15), written as independent frames of 4 MiB of input that
// compress side by side on libuv's thread pool (src/upload/zstd-frames.ts): one large NAR uses every
// core, and the main thread keeps reading, hashing and sending meanwhile. bench/zstd-choice.bench.ts
// chose node:zlib over zstd-napi (docs/architecture.md).
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { ConfigError } from '../errors.js';
import { COMPRESSION_LEVELS, type Compression } from '../format/bucket-layout.js';
import { ComputePool } from './compute-pool.js';
import { ZstdFrameCompressor, type InputHash } from './zstd-frames.js';
import type { OutputSource } from './zstd-output.js';
import { isThreadCount, THREAD_COUNT } from '../thread-count.js';

export interface CompressorOptions {
  /** zstd: its own level range (default 3, like the zstd CLI); xz: preset 0-9 (default 6, like xz). */
  level?: number;
  /**
   * xz compression threads; defaults to min(2, available cores). For zstd without a `pool`: the
   * size of a private pool (default: the available cores).
   */
  threads?: number;
  /** zstd: the run's shared frame budget (one per run, so memory is bounded across uploads). */
  pool?: ComputePool;
  /**
   * Called with each input chunk once the compressor needs none of its bytes (see copiesInput):
   * the chunk's lender may then reuse its memory. Compressors that do not copy never call it.
   */
  consumed?: (chunk: Buffer) => void;
  /** zstd: lent memory for the compressed output (NarMemory.output; see upload/zstd-output.ts). */
  output?: OutputSource;
  /** zstd: hears every input byte, in order (see hashesInput). */
  inputHash?: InputHash;
}

/**
 * Whether the compressor feeds `inputHash` with its input (zstd, a frame at a time). The others
 * leave the NAR's hash to a meter in front of them.
 */
export function hashesInput(kind: Compression): boolean {
  return kind === 'zstd';
}

/**
 * Whether the compressor copies every input chunk before it asks for the next (zstd, into its frame
 * buffers) and reports it through `consumed`. xz's native stream and `none` pass chunks on or keep
 * them where we cannot see: their input must not be lent memory that comes back.
 */
export function copiesInput(kind: Compression): boolean {
  return kind === 'zstd';
}

export const DEFAULT_ZSTD_LEVEL = COMPRESSION_LEVELS.zstd.default;
export const DEFAULT_XZ_LEVEL = COMPRESSION_LEVELS.xz.default;

export function createCompressor(kind: Compression, opts: CompressorOptions = {}): Transform {
  const threads = checkThreads(opts.threads ?? Math.min(2, availableParallelism()));
  switch (kind) {
    case 'zstd':
      return new ZstdFrameCompressor(
        opts.pool ?? new ComputePool(opts.threads ?? availableParallelism()),
        checkLevel('zstd', opts.level ?? DEFAULT_ZSTD_LEVEL),
        {
          ...(opts.consumed ? { consumed: opts.consumed } : {}),
          ...(opts.output ? { output: opts.output } : {}),
          ...(opts.inputHash ? { inputHash: opts.inputHash } : {}),
        },
      );
    case 'xz':
      return new XzCompressStream(checkLevel('xz', opts.level ?? DEFAULT_XZ_LEVEL), threads);
    case 'none':
      return new PassThrough();
  }
}

/**
 * Compresses a whole small body in one call on the calling thread; undefined when the codec has no
 * such form here (xz: its native stream only). For a NAR of a few KiB, a streaming compressor's
 * set-up (a zlib stream, a trip to the thread pool, stream plumbing) costs about ten times the
 * compression itself: 250 against 30 microseconds of CPU for a 300-byte NAR on Node 24.
 */
export function wholeCompressor(kind: Compression, level?: number): ((bytes: Buffer) => Buffer) | undefined {
  switch (kind) {
    case 'zstd': {
      const params = {
        [zlib.constants.ZSTD_c_compressionLevel]: checkLevel('zstd', level ?? DEFAULT_ZSTD_LEVEL),
      };
      return (bytes) => zlib.zstdCompressSync(bytes, { params });
    }
    case 'none':
      return (bytes) => bytes;
    case 'xz':
      return undefined;
  }
}

function checkThreads(threads: number): number {
  if (!isThreadCount(threads)) {
    throw new ConfigError(
      `compression threads must be a whole number from ${THREAD_COUNT.min} to ${THREAD_COUNT.max}, not ${threads}`,
    );
  }
  return threads;
}

function checkLevel(kind: 'zstd' | 'xz', level: number): number {
  const { min, max } = COMPRESSION_LEVELS[kind];
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new ConfigError(
      `${kind} compression level must be a whole number from ${min} to ${max}, not ${level}`,
    );
  }
  return level;
}

// The native addon loads on first use: a run that compresses nothing (everything already cached)
// or uses another codec should not pay for loading it (start-up time, bench/upload.bench.ts).
const requireCjs = createRequire(import.meta.url);

// ---- xz ------------------------------------------------------------------------------------------

/** The part of lzma-native (which ships no type declarations) that we use. */
interface LzmaStream {
  write(chunk: Buffer, cb: (err?: Error | null) => void): boolean;
  end(): void;
  pause(): void;
  resume(): void;
  destroy(): void;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}
interface LzmaNative {
  CHECK_CRC64: number;
  createStream(
    coder: 'easyEncoder',
    options: { preset: number; check: number; threads?: number },
  ): LzmaStream;
}
let lzmaModule: LzmaNative | undefined;
function lzmaNative(): LzmaNative {
  lzmaModule ??= requireCjs('lzma-native') as LzmaNative;
  return lzmaModule;
}

/**
 * A node:stream Transform around lzma-native's stream (a readable-stream v3 object whose errors can
 * arrive after it is destroyed). The inner stream's output is paused whenever our readable side is
 * full, so its write callbacks, and therefore ours, wait for the consumer.
 */
class XzCompressStream extends Transform {
  private readonly inner: LzmaStream;
  private flushCallback: TransformCallback | undefined;

  constructor(preset: number, threads: number) {
    super();
    // CRC64 is the check `xz` writes by default. One thread uses liblzma's single-threaded encoder,
    // like `xz -T1`: the multi-threaded one adds two block buffers (3 x dictionary, 24 MiB at
    // preset 6) to its ~95 MiB. Preset 0 must still take the multi-threaded path, because
    // lzma-native's single-threaded path reads a preset of 0 as "use the default (6)".
    const mt = threads > 1 || preset === 0;
    const lzma = lzmaNative();
    const options = { preset, check: lzma.CHECK_CRC64, ...(mt ? { threads } : {}) };
    this.inner = lzma.createStream('easyEncoder', options);
    this.inner.on('data', (chunk) => {
      if (!this.push(chunk)) this.inner.pause();
    });
    this.inner.on('end', () => {
      const cb = this.flushCallback;
      this.flushCallback = undefined;
      cb?.();
    });
    // Stays attached after destroy, so a late error from the native side cannot become uncaught.
    this.inner.on('error', (err) => {
      if (!this.destroyed) this.destroy(err);
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.inner.write(chunk, (err) => callback(err ?? null));
  }

  override _flush(callback: TransformCallback): void {
    this.flushCallback = callback;
    this.inner.end();
  }

  override _read(size: number): void {
    super._read(size);
    this.inner.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.inner.destroy();
    callback(err);
  }
}
