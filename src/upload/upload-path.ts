// Uploading one store path's objects: its NAR (stream -> NarHash meter -> compressor -> FileHash
// meter -> object store, then checked against Nix's NarHash and NarSize), and its signed narinfo.
// The caller (upload/path-task.ts) writes the narinfo last, once the path's references are
// committed: it is what makes the path visible to Nix.
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { CorruptPathError } from '../errors.js';
import { formatHashNix32, hashEquals, sha256Hash, type Hash } from '../format/hash.js';
import { renderNarInfo } from '../format/narinfo.js';
import { fingerprintOfParsed } from '../format/fingerprint.js';
import { fingerprintDigest } from '../format/signed-record.js';
import { buildNarInfo } from '../format/narinfo-builder.js';
import type { PathInfo } from '../format/path-info.js';
import type { SecretKey } from '../format/signing-key.js';
import type { MultipartState } from '../state/multipart-state.js';
import { ResumeMismatch } from '../storage/resumable-upload.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { NarMemory } from '../chunk-pool.js';
import { copiesInput, createCompressor, hashesInput, wholeCompressor } from './compression.js';
import type { ComputePool } from './compute-pool.js';
import type { NarWorkers } from './nar-workers.js';
import { HashMeter } from './hash-meter.js';
import {
  CONTENT_TYPE_NAR,
  CONTENT_TYPE_NARINFO,
  narinfoKey,
  narKey,
  type Compression,
} from '../format/bucket-layout.js';
import type { NarListener } from '../format/nar-writer.js';
import type { NarListingBuilder } from '../format/nar-listing.js';
import type { PathExtras } from './path-extras.js';
import type { Logger } from '../log.js';
import { narDestination, type NarDestination } from './resumable-nar.js';
import type { SignedLedger } from './signed-ledger.js';
import { newUploadId } from './upload-id.js';

export interface UploadPathDeps {
  store: ObjectStore;
  /**
   * Produces the path's NAR (src/store/dump-nar.ts in production), its chunks lent from `memory`
   * when one is given; `onEntry` sees each node as it is written, for a file listing made in the
   * same pass.
   */
  dumpNar: (path: string, memory?: NarMemory, onEntry?: NarListener) => Readable;
  /**
   * Memory the NAR's chunks are lent from, given back once copied: by the compressor when it copies
   * its input (copiesInput in compression.ts), by uploadSmallNar for a small NAR read whole.
   */
  narMemory?: NarMemory;
  compression: Compression;
  compressionLevel: number;
  compressionThreads: number;
  /** The run's frame budget for zstd, shared by every path in flight. */
  computePool?: ComputePool;
  /** Worker threads for whole middle-sized NARs (upload/nar-workers.ts); without them, all stream. */
  narWorkers?: NarWorkers;
  signingKey: SecretKey | undefined;
  /** Learns the ETag of each narinfo written with our signature (upload/signed-ledger.ts). */
  signedLedger?: SignedLedger;
  signal?: AbortSignal;
  /** Logs, realisations, listings and the debug-info index (src/upload/path-extras.ts). */
  extras?: PathExtras;
  /** Called with NAR bytes as they are read, for progress. */
  onNarBytes?: (n: number) => void;
  /** Called with compressed bytes as the compressor produces them, for progress. */
  onFileBytes?: (n: number) => void;
  /** Called with compressed bytes as the store acknowledges them (PutOptions.onStored). */
  onStoredBytes?: (n: number) => void;
  /** Where multipart uploads record their parts, so a killed run's upload is resumed (S3 only). */
  multipart?: MultipartState;
  logger?: Logger;
}

export interface UploadedPath {
  path: string;
  narKey: string;
  narSize: number;
  fileSize: number;
}

/** A path whose NAR is stored and checked against Nix's NarHash, its narinfo not yet written. */
export interface CheckedNar {
  info: PathInfo;
  narKey: string;
  narSize: number;
  fileHash: Buffer;
  fileSize: number;
  listing?: NarListingBuilder;
}

/**
 * NARs up to this size are read whole and compressed in one call (uploadSmallNar). Most paths of a
 * closure are this small (.drv files, scripts, configuration); compressing 64 KiB on the main thread
 * takes well under a millisecond.
 */
export const SMALL_NAR_BYTES = 64 * 1024;

/** The NAR alone: dumped, hashed, compressed, stored, then checked against Nix's NarHash and size. */
export async function uploadNar(info: PathInfo, deps: UploadPathDeps): Promise<CheckedNar> {
  const whole =
    info.narSize <= SMALL_NAR_BYTES ? wholeCompressor(deps.compression, deps.compressionLevel) : undefined;
  if (whole !== undefined) return uploadSmallNar(info, deps, whole);
  const onWorker = await uploadOnWorker(info, deps);
  if (onWorker !== undefined) return onWorker;
  let dest = await narDestination(info, deps);
  let listing = deps.extras?.startListing();
  let streamed;
  try {
    streamed = await streamNar(info.path, info.narSize, dest, deps, listing);
  } catch (err) {
    // The re-produced NAR differs from the unfinished upload's parts (which are now aborted).
    if (!(err instanceof ResumeMismatch)) throw err;
    deps.logger?.info({ path: info.path, part: err.partNumber }, 'unfinished upload differs; starting clean');
    dest = await narDestination(info, deps, true);
    listing = deps.extras?.startListing(); // the first pass stopped part-way through the NAR
    streamed = await streamNar(info.path, info.narSize, dest, deps, listing);
  }
  const { narMeter, fileMeter } = streamed;
  const key = dest.key;

  const narHash = sha256Hash(narMeter.digest());
  if (!hashEquals(narHash, info.narHash) || narMeter.bytes !== info.narSize) {
    // The store changed after Nix registered the path. Nothing refers to this NAR yet: remove it.
    await deps.store.deleteMany([key]).catch(() => undefined);
    throw corruptPath(info, narHash, narMeter.bytes);
  }
  return {
    info,
    narKey: key,
    narSize: narMeter.bytes,
    fileHash: fileMeter.digest(),
    fileSize: fileMeter.bytes,
    ...(listing ? { listing } : {}),
  };
}

/**
 * A small NAR: read whole and checked against Nix's NarHash and NarSize before anything is stored,
 * then compressed in one call and sent in one request. Without the streaming pipeline's set-up
 * (two hash meters, a compressor stream, a body reader, a multipart journal look-up), 1,000 tiny
 * paths cost loft about a fifth less CPU. Such a NAR never goes in parts (its compressed size is far
 * below S3's 5 MiB minimum part), so it has no unfinished upload to resume: it gets a fresh key.
 */
async function uploadSmallNar(
  info: PathInfo,
  deps: UploadPathDeps,
  compress: (nar: Buffer) => Buffer,
): Promise<CheckedNar> {
  const listing = deps.extras?.startListing();
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let bytes = 0;
  // The reader's chunks are lent (its slabs and read buffers are reused, not allocated per NAR)
  // and given back here once copied into the NAR buffer.
  const memory = deps.narMemory;
  let nar: Buffer;
  try {
    for await (const chunk of deps.dumpNar(info.path, memory, listing?.onEntry) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      deps.onNarBytes?.(chunk.length);
      // A NAR longer than Nix registered is corrupt: hashed to the end for the message, not kept.
      if (bytes <= info.narSize) chunks.push(chunk);
      else memory?.giveBack(chunk);
    }
    nar = Buffer.concat(chunks, Math.min(bytes, info.narSize));
  } finally {
    if (memory) for (const chunk of chunks) memory.giveBack(chunk);
  }
  const narHash = sha256Hash(hash.digest());
  if (!hashEquals(narHash, info.narHash) || bytes !== info.narSize) throw corruptPath(info, narHash, bytes);
  const file = compress(nar);
  const stored = await storeWholeFile(info, deps, file, createHash('sha256').update(file).digest());
  return { ...stored, ...(listing ? { listing } : {}) };
}

/**
 * A checked NAR's whole compressed file, sent in one request under a fresh key (it never goes in
 * parts, so there is no unfinished upload to resume), with its FileHash as the request's payload
 * hash.
 */
async function storeWholeFile(
  info: PathInfo,
  deps: UploadPathDeps,
  file: Buffer,
  fileHash: Buffer,
): Promise<CheckedNar> {
  const key = narKey(info.hashPart, info.narHash, deps.compression, newUploadId());
  const fileSize = file.length;
  await deps.store.putBytes(key, file, {
    contentType: CONTENT_TYPE_NAR,
    sha256: () => fileHash,
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  return { info, narKey: key, narSize: info.narSize, fileHash, fileSize };
}

/**
 * A middle-sized NAR made whole on a worker thread (upload/nar-workers.ts), checked against Nix's
 * NarHash and NarSize here before anything is stored, then sent in one request like a small NAR.
 * Undefined when the path is not for the workers or the worker gave it back: then it streams, and
 * the streaming path reports whatever was wrong (a corrupt or vanished path) as it always has.
 */
async function uploadOnWorker(info: PathInfo, deps: UploadPathDeps): Promise<CheckedNar | undefined> {
  const workers = deps.narWorkers;
  const { compression } = deps;
  if (workers === undefined || compression === 'xz') return undefined;
  if (!workers.takes(info.narSize, compression, SMALL_NAR_BYTES)) return undefined;
  if (deps.extras?.wantsListing()) return undefined;
  const made = await workers.run(info.path, info.narSize, compression, deps.compressionLevel);
  if (made === undefined || !hashEquals(sha256Hash(made.narHash), info.narHash)) return undefined;
  deps.logger?.debug({ path: info.path, fileSize: made.file.length }, 'NAR made on a worker thread');
  deps.onNarBytes?.(info.narSize);
  const stored = await storeWholeFile(info, deps, made.file, made.fileHash);
  // Stored: the worker may reuse the memory. After a failure a request might still hold the body,
  // so its memory is left to the garbage collector instead.
  made.giveBack();
  return stored;
}

/** The store changed after Nix registered the path (found before its narinfo is written). */
function corruptPath(info: PathInfo, narHash: Hash, bytes: number): CorruptPathError {
  return new CorruptPathError(
    info.path,
    `${info.path} is corrupt: its contents hash to ${formatHashNix32(narHash)} (${bytes} bytes) ` +
      `but Nix registered ${formatHashNix32(info.narHash)} (${info.narSize} bytes); ` +
      `run 'nix-store --verify --check-contents --repair'`,
  );
}

/** The signed narinfo of a stored NAR: the commit point. The caller waits for references first. */
export async function commitNarInfo(stored: CheckedNar, deps: UploadPathDeps): Promise<UploadedPath> {
  const { info } = stored;
  const file = {
    url: stored.narKey,
    compression: deps.compression,
    fileHash: sha256Hash(stored.fileHash),
    fileSize: stored.fileSize,
  };
  const narinfo = buildNarInfo(info, file, deps.signingKey);
  const ledger = deps.signingKey === undefined ? undefined : deps.signedLedger;
  await deps.store.putBytes(narinfoKey(info.hashPart), renderNarInfo(narinfo), {
    contentType: CONTENT_TYPE_NARINFO,
    ...(ledger ? { onEtag: (etag: string) => ledger.note(info.hashPart, etag, digestOf(info)) } : {}),
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  return { path: info.path, narKey: stored.narKey, narSize: stored.narSize, fileSize: stored.fileSize };
}

/** What the signed records keep of the fingerprint buildNarInfo signed. */
function digestOf(info: PathInfo): string {
  return fingerprintDigest(fingerprintOfParsed(info.path, info.narHash, info.narSize, info.references));
}

/** A bound of a NAR's compressed size: a little larger than the NAR at worst (incompressible data + framing). */
export function narSizeHint(narSize: number): number {
  return Math.ceil(narSize * 1.01) + 1024 * 1024;
}

async function streamNar(
  path: string,
  narSize: number,
  { key, resumable }: NarDestination,
  deps: UploadPathDeps,
  listing: NarListingBuilder | undefined,
): Promise<{ narMeter: HashMeter; fileMeter: HashMeter }> {
  const narMeter = new HashMeter();
  narMeter.onBytes = deps.onNarBytes;
  const fileMeter = new HashMeter();
  fileMeter.onBytes = deps.onFileBytes;
  // The one place lent NAR memory comes back: the compressor reports each chunk it has copied, and
  // the store each compressed chunk (lent by the compressor from the same memory) once written.
  const memory = copiesInput(deps.compression) ? deps.narMemory : undefined;
  // zstd hashes the NAR itself, each frame as its compression starts (zstd-frames.ts, inputHash);
  // the other codecs have the meter in front of them.
  const fedMeter = hashesInput(deps.compression);
  const compressor = createCompressor(deps.compression, {
    level: deps.compressionLevel,
    threads: deps.compressionThreads,
    ...(deps.computePool ? { pool: deps.computePool } : {}),
    ...(memory ? { consumed: memory.giveBack, output: memory.output } : {}),
    ...(fedMeter ? { inputHash: narMeter } : {}),
  });
  const source = deps.dumpNar(path, memory, listing?.onEntry);
  const piped = new Promise<void>((resolve, reject) => {
    const done = (err: Error | null) => (err ? reject(err) : resolve());
    if (fedMeter) pipeline(source, compressor, fileMeter, done);
    else pipeline(source, narMeter, compressor, fileMeter, done);
  });
  const put = deps.store.putStream(key, fileMeter, {
    contentType: CONTENT_TYPE_NAR,
    sizeHint: narSizeHint(narSize),
    // The FileHash, once the compressed stream has ended: a single PUT signs it as its payload hash.
    sha256: () => fileMeter.digest(),
    ...(deps.signal ? { signal: deps.signal } : {}),
    ...(resumable ? { resumable } : {}),
    ...(deps.onStoredBytes ? { onStored: deps.onStoredBytes } : {}),
    ...(memory ? { consumed: memory.giveBack } : {}),
  });
  const [pipeResult, putResult] = await Promise.allSettled([piped, put]);
  if (pipeResult.status === 'rejected') {
    // The store destroys the body with its own failure (a full disk's ENOSPC), which then also
    // fails the pipeline: the store's classified error is the one to report.
    const putError = putResult.status === 'rejected' ? (putResult.reason as unknown) : undefined;
    if (putError instanceof Error && [putError, putError.cause].includes(pipeResult.reason)) throw putError;
    // A read or compression failure also fails the upload; report the cause, not the symptom.
    if (putResult.status === 'fulfilled') await deps.store.deleteMany([key]).catch(() => undefined);
    throw pipeResult.reason;
  }
  if (putResult.status === 'rejected') {
    source.destroy();
    throw putResult.reason;
  }
  return { narMeter, fileMeter };
}
