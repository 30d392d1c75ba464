// The one interface the rest of loft uses to reach a binary cache's storage. Keys are the paths Nix
// reads over HTTP relative to the cache root (`nix-cache-info`, `<hash>.narinfo`, `nar/<x>.nar.zst`),
// so an S3 bucket and a local directory hold the same layout (format/bucket-layout.ts).
import type { Readable } from 'node:stream';
import type { ResumableUpload } from './resumable-upload.js';

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
  /** The object's ETag without quotes, where the store has one (S3). */
  etag?: string;
}

/** A whole object with its ETag (ObjectStore.getTagged). */
export interface TaggedBody {
  body: Buffer;
  /** Without quotes; undefined where the store gave none. */
  etag: string | undefined;
}

export interface PutOptions {
  contentType: string;
  /**
   * The body's `Content-Encoding` (a build log under Nix's `log-compression`): S3's putBytes keeps
   * it with the object. A directory keeps no headers and nginx's WebDAV drops them, so config
   * refuses the setting for [local] and [http] and those stores never see it.
   */
  contentEncoding?: string;
  signal?: AbortSignal;
  /** An upper bound of the body's size when known, so a huge body gets parts large enough. */
  sizeHint?: number;
  /**
   * The body's sha256 when the caller computes it anyway (putBytes: of `body`; putStream: called
   * once the stream has ended, e.g. the FileHash meter's digest). S3 sends it as the SigV4 payload
   * hash instead of hashing the body a second time.
   */
  sha256?: () => Buffer;
  /**
   * putStream to S3: record the multipart upload's progress here, and carry on with the unfinished
   * upload it names (src/storage/s3-part-upload.ts). Other stores ignore it.
   */
  resumable?: ResumableUpload;
  /**
   * putStream: told with a count of the body's bytes each time the target has acknowledged some
   * (an S3 part or the single PUT answered, a file written and renamed, an HTTP PUT answered), so
   * the uploader's progress counts what is stored rather than what was read. A body that fails is
   * told nothing more; what it was told before stays counted by the caller until it retries.
   */
  onStored?: (bytes: number) => void;
  /**
   * putStream: called with each chunk of the body (the very Buffer read) once the store holds no
   * reference to it any more (written to its file, copied into a part or a request body), so the
   * chunk's lender may reuse the memory (src/chunk-pool.ts). A store may call it for some chunks
   * or none (the rest go to the garbage collector), never before it is done with one.
   */
  consumed?: (chunk: Buffer) => void;
  /**
   * putBytes: called with the stored object's ETag (without quotes) when the store's answer gives
   * one (S3), before putBytes resolves (upload/signed-ledger.ts records it).
   */
  onEtag?: (etag: string) => void;
}

/** Asked before each delete request with its number of keys; false: send no more. */
export type BeforeDelete = (keys: number) => boolean;

export interface ObjectStore {
  /** Where the objects go, for logs and messages, e.g. "s3://bucket at http://host:port". No secrets. */
  readonly description: string;
  /** undefined when the object does not exist. */
  head(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined>;
  /** The whole object in memory (narinfo, nix-cache-info); undefined when absent. */
  get(key: string, signal?: AbortSignal): Promise<Buffer | undefined>;
  /** get() with the ETag of the very bytes returned. Optional: a store without ETags has none. */
  getTagged?(key: string, signal?: AbortSignal): Promise<TaggedBody | undefined>;
  /**
   * The object as a stream, for bodies too large to hold (a NAR read back by `loft verify
   * --check-contents`); undefined when absent. Optional: a store without it is read with `get`.
   */
  getStream?(key: string, signal?: AbortSignal): Promise<Readable | undefined>;
  putBytes(key: string, body: Buffer | string, opts: PutOptions): Promise<void>;
  /**
   * A body of unknown length with bounded memory. On failure nothing is left under `key`, and the
   * body stream is destroyed with the error that is thrown (so a pipeline feeding it settles).
   */
  putStream(key: string, body: Readable, opts: PutOptions): Promise<void>;
  /**
   * The most bytes of a body that one putStream holds in memory at once, for a body of about
   * `sizeHint` bytes (the hint putStream is given): the uploader keeps the sum over the uploads in
   * flight under a budget. 0 for a store that writes the body through as it comes; a store without
   * this method counts as 0.
   */
  bufferedPerUpload?(sizeHint: number): number;
  /** Drops buffers the store keeps for its next upload (S3 part buffers): the process is idle. */
  releaseIdleMemory?(): void;
  /** Every object whose key starts with `prefix`, page by page. */
  list(prefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo>;
  /**
   * The objects at the top of the cache (keys without a `/`: narinfos, nix-cache-info), in
   * ascending key order, page by page, without reading what is under `nar/`, `log/` and the other
   * folders. Optional: topLevelObjects() lists and sorts for a store without it. `folders`, when
   * given, gains each top-level folder seen (`log/`, `nar/`, ...) once the listing is read through.
   */
  listTopLevel?(signal?: AbortSignal, folders?: Set<string>): AsyncIterable<ObjectInfo>;
  /**
   * Writes `key` only if it does not exist (S3's `If-None-Match: *`): true when written, false when
   * the key existed. Absent where the store has no such write. Some servers ignore the header and
   * always write: callers that rely on it probe first (src/prune/lease.ts).
   */
  createExclusive?(key: string, body: Buffer | string, opts: PutOptions): Promise<boolean>;
  /**
   * Deleting a key that does not exist is not an error. The store splits `keys` into as many
   * requests as it needs (S3's DeleteObjects takes 1,000 keys); `beforeRequest`, when given, is
   * asked before each with the number of keys it carries, and false leaves those and the rest
   * alone (a prune's time budget, its count of requests).
   */
  deleteMany(keys: string[], signal?: AbortSignal, beforeRequest?: BeforeDelete): Promise<void>;
  close(): Promise<void>;
}

/**
 * The store's top-level objects in ascending key order: its own listTopLevel, or the full listing
 * filtered and sorted (a directory or WebDAV listing comes in no useful order).
 */
export async function* topLevelObjects(
  store: ObjectStore,
  signal?: AbortSignal,
  folders?: Set<string>,
): AsyncIterable<ObjectInfo> {
  if (store.listTopLevel) {
    yield* store.listTopLevel(signal, folders);
    return;
  }
  const top: ObjectInfo[] = [];
  for await (const o of store.list('', signal)) {
    const slash = o.key.indexOf('/');
    if (slash < 0) top.push(o);
    else folders?.add(o.key.slice(0, slash + 1));
  }
  top.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  yield* top;
}
