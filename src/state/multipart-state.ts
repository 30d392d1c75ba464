// Unfinished multipart uploads of large NARs (tables multipart_upload and multipart_part), so that a
// run killed in the middle of one (kill -9, a power cut, the OOM killer) lets the next run send only
// the parts S3 has not acknowledged. A row is written before the first part and goes when the upload
// completes or is aborted; a part is added when S3 has acknowledged it. A row that outlives its
// upload (a prune aborted it, the crash came after the completion) only costs one ListParts: the
// uploader then finds the upload gone and starts clean. A lost part row only costs sending it again,
// which is why `synchronous = NORMAL` is enough here too.
import type Database from 'better-sqlite3';
import { openStateDb } from './database.js';
import { openError } from './open-error.js';

/** What produced the NAR bytes and where they go; a resumed upload must match all of it. */
export interface MultipartOrigin {
  narHash: string;
  /** The compressor, its library version and settings, e.g. "zstd 1.5.7 level 3". */
  producer: string;
  narKey: string;
}

export interface RecordedPart {
  partNumber: number;
  etag: string;
  size: number;
  md5: string;
}

export interface RecordedUpload extends MultipartOrigin {
  hashPart: string;
  /** undefined when the run died before S3 gave the upload an id. */
  uploadId: string | undefined;
  partSize: number | undefined;
  ownerPid: number;
  startedAt: number;
  parts: RecordedPart[];
}

interface UploadRow {
  hash_part: string;
  nar_hash: string;
  producer: string;
  nar_key: string;
  upload_id: string | null;
  part_size: number | null;
  owner_pid: number;
  started_at: number;
}

interface PartRow {
  part_number: number;
  etag: string;
  size: number;
  md5: string;
}

export class MultipartState {
  /**
   * find() runs before every NAR upload, tiny ones too: prepared once, not per call (preparing
   * was most of its cost on a closure of 1,000 tiny paths).
   */
  private readonly findUpload: Database.Statement;
  private readonly findParts: Database.Statement;

  private constructor(
    private readonly db: Database.Database,
    /** Rows of another target (bucket, prefix) are never offered: its uploads are not ours to resume. */
    readonly target: string,
  ) {
    this.findUpload = db.prepare('SELECT * FROM multipart_upload WHERE hash_part = ? AND target = ?');
    this.findParts = db.prepare(
      'SELECT part_number, etag, size, md5 FROM multipart_part WHERE hash_part = ? ORDER BY part_number',
    );
  }

  static open(path: string, opts: { target: string }): MultipartState {
    const db = openStateDb(path);
    try {
      return new MultipartState(db, opts.target);
    } catch (err) {
      db.close();
      throw openError(path, err);
    }
  }

  /** The unfinished upload recorded for a store path of this target, with its parts in order. */
  find(hashPart: string): RecordedUpload | undefined {
    const row = this.findUpload.get(hashPart, this.target) as UploadRow | undefined;
    if (row === undefined) return undefined;
    const parts = this.findParts.all(hashPart) as PartRow[];
    return {
      hashPart,
      narHash: row.nar_hash,
      producer: row.producer,
      narKey: row.nar_key,
      uploadId: row.upload_id ?? undefined,
      partSize: row.part_size ?? undefined,
      ownerPid: row.owner_pid,
      startedAt: row.started_at,
      parts: parts.map((p) => ({ partNumber: p.part_number, etag: p.etag, size: p.size, md5: p.md5 })),
    };
  }

  /** A new upload of this path's NAR replaces whatever was recorded for it. */
  begin(hashPart: string, origin: MultipartOrigin, ownerPid: number, nowMs = Date.now()): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM multipart_part WHERE hash_part = ?').run(hashPart);
      this.db
        .prepare(
          `INSERT OR REPLACE INTO multipart_upload
             (hash_part, target, nar_hash, producer, nar_key, upload_id, part_size, owner_pid, started_at)
           VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?)`,
        )
        .run(hashPart, this.target, origin.narHash, origin.producer, origin.narKey, ownerPid, nowMs);
    })();
  }

  /** This process carries on with the recorded upload. */
  claim(hashPart: string, ownerPid: number): void {
    this.db.prepare('UPDATE multipart_upload SET owner_pid = ? WHERE hash_part = ?').run(ownerPid, hashPart);
  }

  /** S3 gave the upload its id (or a resumed one goes on); parts of any other id are dropped. */
  started(hashPart: string, uploadId: string, partSize: number): void {
    this.db.transaction(() => {
      // First, while the row still names the old id: its parts belong to that upload.
      this.db
        .prepare(
          `DELETE FROM multipart_part WHERE hash_part = ? AND NOT EXISTS
             (SELECT 1 FROM multipart_upload WHERE hash_part = ? AND upload_id = ?)`,
        )
        .run(hashPart, hashPart, uploadId);
      this.db
        .prepare('UPDATE multipart_upload SET upload_id = ?, part_size = ? WHERE hash_part = ?')
        .run(uploadId, partSize, hashPart);
    })();
  }

  /** S3 acknowledged a part of the upload `uploadId` (ignored when the row moved on to another). */
  stored(hashPart: string, uploadId: string, part: RecordedPart): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO multipart_part (hash_part, part_number, etag, size, md5)
         SELECT ?, ?, ?, ?, ? WHERE EXISTS
           (SELECT 1 FROM multipart_upload WHERE hash_part = ? AND upload_id = ?)`,
      )
      .run(hashPart, part.partNumber, part.etag, part.size, part.md5, hashPart, uploadId);
  }

  /** The upload completed or was aborted. */
  forget(hashPart: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM multipart_part WHERE hash_part = ?').run(hashPart);
      this.db.prepare('DELETE FROM multipart_upload WHERE hash_part = ?').run(hashPart);
    })();
  }

  /** Every recorded upload of this target (for tests and `loft --status`-like reports). */
  all(): RecordedUpload[] {
    const hashes = this.db
      .prepare('SELECT hash_part FROM multipart_upload WHERE target = ? ORDER BY started_at')
      .pluck()
      .all(this.target) as string[];
    return hashes.map((h) => this.find(h)).filter((u): u is RecordedUpload => u !== undefined);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
