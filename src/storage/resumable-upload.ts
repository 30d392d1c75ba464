// What makes a multipart upload resumable after a crash: the journal a store reports its progress to,
// the unfinished upload to carry on with, and the check of what the journal recorded against what
// the server lists. Plain types and one pure function: the store (s3-part-upload.ts) and the
// uploader (upload/resumable-nar.ts) share them.

/** A part the server acknowledged: what a later run needs to skip sending it again. */
export interface StoredPart {
  /** 1, 2, 3... */
  partNumber: number;
  /** As the server answered it (quotes included): CompleteMultipartUpload sends it back. */
  etag: string;
  size: number;
  /** Hex MD5 of the part's bytes, computed here: the ETag is not an MD5 everywhere (SSE-KMS, some clones). */
  md5: string;
}

/** An unfinished upload of this key to carry on with: its id, part size and the parts already stored. */
export interface ResumeFrom {
  uploadId: string;
  partSize: number;
  parts: readonly StoredPart[];
}

/**
 * Where a multipart upload records its progress as it goes, so that a run killed in the middle
 * (kill -9, a power cut) leaves enough behind for the next one to send only the rest. The caller
 * (upload/) keeps it in the local database; the store only reports.
 */
export interface MultipartJournal {
  /** The upload was created (or resumed) with this id and part size. */
  started(uploadId: string, partSize: number): void;
  /** The server acknowledged a part. */
  stored(uploadId: string, part: StoredPart): void;
  /** The upload was completed or aborted: nothing is left to resume. */
  ended(uploadId: string): void;
}

/** What putStream may be given to make a multipart upload resumable. */
export interface ResumableUpload {
  journal: MultipartJournal;
  /** The upload a killed run left behind under the same key, as checked with `listParts`. */
  resume?: ResumeFrom;
}

/**
 * A part the re-produced body does not match (another compressor version or level, another NAR):
 * the upload was aborted; the caller starts clean under a new key.
 */
export class ResumeMismatch extends Error {
  override readonly name = 'ResumeMismatch';
  constructor(
    readonly key: string,
    readonly partNumber: number,
  ) {
    super(`part ${partNumber} of the unfinished upload of ${key} differs from the one produced now`);
  }
}

/** A part as the server lists it (ListParts). */
export interface ListedPart {
  partNumber: number;
  etag: string;
  size: number;
}

/**
 * The recorded parts the server confirms: same number, ETag and size. Where the ETag is a plain
 * MD5 (S3 without SSE-KMS, most clones) it must also be the recorded MD5. A part the journal has
 * and the server lacks (acknowledged, then lost in the crash before the row was written is the
 * other way round) is simply sent again.
 */
export function confirmedParts(recorded: readonly StoredPart[], listed: readonly ListedPart[]): StoredPart[] {
  const onServer = new Map(listed.map((p) => [p.partNumber, p]));
  return recorded.filter((r) => {
    const l = onServer.get(r.partNumber);
    if (l === undefined || l.etag !== r.etag || l.size !== r.size) return false;
    const plain = /^"?([0-9a-f]{32})"?$/i.exec(l.etag)?.[1];
    return plain === undefined || plain.toLowerCase() === r.md5;
  });
}
