// Uploading one store path: NAR stream -> NarHash meter -> compressor -> FileHash meter -> object
// store, then the signed narinfo. The narinfo is written last and only after the caller says the
// path's references are committed: it is what makes the path visible to Nix.
import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { CorruptPathError } from '../errors.js';
import { formatHashNix32, hashEquals, sha256Hash } from '../format/hash.js';
import { renderNarInfo } from '../format/narinfo.js';
import { buildNarInfo } from '../format/narinfo-builder.js';
import type { PathInfo } from '../format/path-info.js';
import type { SecretKey } from '../format/signing-key.js';
import type { MultipartState } from '../state/multipart-state.js';
import { ResumeMismatch } from '../storage/resumable-upload.js';
import type { ObjectStore } from '../storage/object-store.js';
import { createCompressor } from './compression.js';
import type { ComputePool } from './compute-pool.js';
import { HashMeter } from './hash-meter.js';
import {
  CONTENT_TYPE_NAR,
  CONTENT_TYPE_NARINFO,
  narinfoKey,
  type Compression,
} from '../format/bucket-layout.js';
import type { Logger } from '../log.js';
import { narDestination, type NarDestination } from './resumable-nar.js';

export interface UploadPathDeps {
  store: ObjectStore;
  /** Produces the path's NAR (src/store/dump-nar.ts in production). */
  dumpNar: (path: string) => Readable;
  compression: Compression;
  compressionLevel: number;
  compressionThreads: number;
  /** The run's frame budget for zstd, shared by every path in flight. */
  computePool?: ComputePool;
  signingKey: SecretKey | undefined;
  signal?: AbortSignal;
  /** Called with NAR bytes as they are read, for progress. */
  onNarBytes?: (n: number) => void;
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
interface CheckedNar {
  info: PathInfo;
  narKey: string;
  narSize: number;
  fileHash: Buffer;
  fileSize: number;
}

/**
 * @param beforeCommit resolves once every reference's narinfo exists; rejects if one failed, in
 *   which case this path's narinfo is not written.
 */
export async function uploadPath(
  info: PathInfo,
  deps: UploadPathDeps,
  beforeCommit: () => Promise<void>,
): Promise<UploadedPath> {
  const stored = await uploadNar(info, deps);
  await beforeCommit();
  return await commitNarInfo(stored, deps);
}

/** The NAR alone: dumped, hashed, compressed, stored, then checked against Nix's NarHash and size. */
async function uploadNar(info: PathInfo, deps: UploadPathDeps): Promise<CheckedNar> {
  let dest = await narDestination(info, deps);
  let streamed;
  try {
    streamed = await streamNar(info.path, info.narSize, dest, deps);
  } catch (err) {
    // The re-produced NAR differs from the unfinished upload's parts (which are now aborted).
    if (!(err instanceof ResumeMismatch)) throw err;
    deps.logger?.info({ path: info.path, part: err.partNumber }, 'unfinished upload differs; starting clean');
    dest = await narDestination(info, deps, true);
    streamed = await streamNar(info.path, info.narSize, dest, deps);
  }
  const { narMeter, fileMeter } = streamed;
  const key = dest.key;

  const narHash = sha256Hash(narMeter.digest());
  if (!hashEquals(narHash, info.narHash) || narMeter.bytes !== info.narSize) {
    // The store changed after Nix registered the path. Nothing refers to this NAR yet: remove it.
    await deps.store.deleteMany([key]).catch(() => undefined);
    throw new CorruptPathError(
      info.path,
      `${info.path} is corrupt: its contents hash to ${formatHashNix32(narHash)} (${narMeter.bytes} bytes) ` +
        `but Nix registered ${formatHashNix32(info.narHash)} (${info.narSize} bytes); ` +
        `run 'nix-store --verify --check-contents --repair'`,
    );
  }
  return {
    info,
    narKey: key,
    narSize: narMeter.bytes,
    fileHash: fileMeter.digest(),
    fileSize: fileMeter.bytes,
  };
}

/** The signed narinfo of a stored NAR: the commit point. The caller waits for references first. */
async function commitNarInfo(stored: CheckedNar, deps: UploadPathDeps): Promise<UploadedPath> {
  const { info } = stored;
  const file = {
    url: stored.narKey,
    compression: deps.compression,
    fileHash: sha256Hash(stored.fileHash),
    fileSize: stored.fileSize,
  };
  const narinfo = buildNarInfo(info, file, deps.signingKey);
  await deps.store.putBytes(narinfoKey(info.hashPart), renderNarInfo(narinfo), {
    contentType: CONTENT_TYPE_NARINFO,
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  return { path: info.path, narKey: stored.narKey, narSize: stored.narSize, fileSize: stored.fileSize };
}

async function streamNar(
  path: string,
  narSize: number,
  { key, resumable }: NarDestination,
  deps: UploadPathDeps,
): Promise<{ narMeter: HashMeter; fileMeter: HashMeter }> {
  const narMeter = new HashMeter();
  narMeter.onBytes = deps.onNarBytes;
  const fileMeter = new HashMeter();
  const compressor = createCompressor(deps.compression, {
    level: deps.compressionLevel,
    threads: deps.compressionThreads,
    ...(deps.computePool ? { pool: deps.computePool } : {}),
  });
  const source = deps.dumpNar(path);
  const piped = new Promise<void>((resolve, reject) => {
    pipeline(source, narMeter, compressor, fileMeter, (err) => (err ? reject(err) : resolve()));
  });
  const put = deps.store.putStream(key, fileMeter, {
    contentType: CONTENT_TYPE_NAR,
    // Compressed NARs can be a little larger than the NAR itself (incompressible data + framing).
    sizeHint: Math.ceil(narSize * 1.01) + 1024 * 1024,
    // The FileHash, once the compressed stream has ended: a single PUT signs it as its payload hash.
    sha256: () => fileMeter.digest(),
    ...(deps.signal ? { signal: deps.signal } : {}),
    ...(resumable ? { resumable } : {}),
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
