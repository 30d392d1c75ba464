// Where a NAR upload goes, and whether it carries on with an upload a killed run left behind.
//
// A NAR's key is new for every upload (upload-id.ts), so a resumed upload must reuse the key it
// recorded, not draw a new one. It may only do so when everything that made the recorded bytes is
// the same: the path's NarHash, the compressor (its library version and level: zstd's output is a
// function of its input, level and version, and loft's frames are cut at fixed input offsets, so a
// re-produced NAR is byte-identical; see docs/architecture.md "Multipart uploads that survive a
// crash"), the target, and the part size. What the journal says is checked against the server's
// ListParts, and each skipped part's re-produced bytes against its recorded MD5 while uploading
// (storage/s3-part-upload.ts); any difference aborts the old upload and starts clean.
import { narKey, type Compression } from '../format/bucket-layout.js';
import { formatHashNix32 } from '../format/hash.js';
import type { PathInfo } from '../format/path-info.js';
import type { Logger } from '../log.js';
import type { MultipartOrigin, MultipartState, RecordedUpload } from '../state/multipart-state.js';
import { multipartUploadsOf, resumablePartsOf } from '../storage/multipart-uploads.js';
import { confirmedParts, type ResumableUpload } from '../storage/resumable-upload.js';
import type { ObjectStore } from '../storage/object-store.js';
import { newUploadId } from './upload-id.js';
import { ZSTD_FRAME_BYTES } from './zstd-frames.js';

export interface ResumeDeps {
  store: ObjectStore;
  multipart?: MultipartState;
  compression: Compression;
  compressionLevel: number;
  compressionThreads: number;
  logger?: Logger;
  signal?: AbortSignal;
}

export interface NarDestination {
  key: string;
  resumable?: ResumableUpload;
}

/** What made the NAR's bytes: a resumed upload must have been produced the same way. */
export function producerOf(
  d: Pick<ResumeDeps, 'compression' | 'compressionLevel' | 'compressionThreads'>,
): string {
  switch (d.compression) {
    case 'zstd':
      // "sized": every frame declares its content size (each is compressed in one step, since the
      // eighth round), so its bytes differ from what the stepped, "unsized" frames of earlier
      // versions were: an upload they left unfinished starts clean. "unchecked": frames carry no
      // content checksum (upload/zstd-contexts.ts), unlike the sized frames before them.
      return `zstd ${process.versions.zstd ?? '?'} level ${d.compressionLevel} frames ${ZSTD_FRAME_BYTES} sized unchecked`;
    case 'xz':
      return `xz preset ${d.compressionLevel} threads ${d.compressionThreads}`;
    default:
      return d.compression;
  }
}

/**
 * The key to upload `info`'s NAR to, and the journal that records its parts (only when a state
 * database is given and the store can list an upload's parts, i.e. S3).
 * @param fresh start clean even if an upload is recorded (after a ResumeMismatch)
 */
export async function narDestination(
  info: PathInfo,
  deps: ResumeDeps,
  fresh = false,
): Promise<NarDestination> {
  const state = deps.multipart;
  const parts = resumablePartsOf(deps.store);
  const newKey = (): string => narKey(info.hashPart, info.narHash, deps.compression, newUploadId());
  if (state === undefined || parts === undefined) return { key: newKey() };
  const origin = { narHash: formatHashNix32(info.narHash), producer: producerOf(deps) };
  const recorded = state.find(info.hashPart);
  if (recorded !== undefined && recorded.ownerPid !== process.pid && processExists(recorded.ownerPid)) {
    // Another loft on this host is sending it right now: upload without a journal of our own.
    return { key: newKey() };
  }
  if (recorded !== undefined && !fresh) {
    const resumed = await resumeRecorded(info, recorded, origin, deps);
    if (resumed !== undefined) return resumed;
  }
  const key = newKey();
  // Recorded only once the store starts a multipart upload: a NAR sent in one PUT leaves no row.
  return { key, resumable: { journal: journalOf(state, info.hashPart, { ...origin, narKey: key }) } };
}

async function resumeRecorded(
  info: PathInfo,
  recorded: RecordedUpload,
  origin: { narHash: string; producer: string },
  deps: ResumeDeps,
): Promise<NarDestination | undefined> {
  const state = deps.multipart!;
  const same = recorded.narHash === origin.narHash && recorded.producer === origin.producer;
  const { uploadId, partSize } = recorded;
  if (uploadId === undefined || partSize === undefined) return undefined;
  if (!same) {
    deps.logger?.info(
      { path: info.path, was: recorded.producer, now: origin.producer },
      'an unfinished upload of this path was made differently; aborting it and starting clean',
    );
    await abortQuietly(deps, recorded.narKey, uploadId);
    state.forget(info.hashPart);
    return undefined;
  }
  const listed = await resumablePartsOf(deps.store)!
    .listUploadParts(recorded.narKey, uploadId, deps.signal)
    .catch((err: unknown) => {
      // Resuming only saves bytes: a store that cannot say what it holds gets a clean upload.
      deps.logger?.warn({ path: info.path, err }, 'could not list the parts of an unfinished upload');
      return undefined;
    });
  if (listed === undefined) {
    // Completed before the crash, or aborted by a prune: its key is not to be written again.
    state.forget(info.hashPart);
    return undefined;
  }
  const parts = confirmedParts(recorded.parts, listed);
  state.claim(info.hashPart, process.pid);
  deps.logger?.info(
    { path: info.path, key: recorded.narKey, partsStored: parts.length },
    'resuming an unfinished multipart upload',
  );
  return {
    key: recorded.narKey,
    resumable: { journal: journalOf(state, info.hashPart), resume: { uploadId, partSize, parts } },
  };
}

function journalOf(
  state: MultipartState,
  hashPart: string,
  fresh?: MultipartOrigin,
): ResumableUpload['journal'] {
  return {
    started: (uploadId, partSize) => {
      if (fresh) state.begin(hashPart, fresh, process.pid);
      state.started(hashPart, uploadId, partSize);
    },
    stored: (uploadId, part) => state.stored(hashPart, uploadId, part),
    ended: () => state.forget(hashPart),
  };
}

async function abortQuietly(deps: ResumeDeps, key: string, uploadId: string): Promise<void> {
  // Not fatal: an upload left unaborted is invisible to readers and collected by pruning.
  await multipartUploadsOf(deps.store)
    ?.abortMultipartUpload(key, uploadId, deps.signal)
    .catch(() => undefined);
}

/** A pid of this host that still runs (EPERM: it runs as another user). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
