// The one interface the rest of loft uses to reach a binary cache's storage. Keys are the paths Nix
// reads over HTTP relative to the cache root (`nix-cache-info`, `<hash>.narinfo`, `nar/<x>.nar.zst`),
// so an S3 bucket and a local directory hold the same layout.
import type { Readable } from 'node:stream';

/** What Nix's HTTP binary cache store sends for a NAR (`nar/*.nar*`). */
export const CONTENT_TYPE_NAR = 'application/x-nix-nar';
/** What Nix's binary cache store writes for `<hash>.narinfo`. */
export const CONTENT_TYPE_NARINFO = 'text/x-nix-narinfo';
/** What Nix's binary cache store writes for `nix-cache-info`. */
export const CONTENT_TYPE_NIX_CACHE_INFO = 'text/x-nix-cache-info';

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
}

export interface PutOptions {
  contentType: string;
  signal?: AbortSignal;
  /** An upper bound of the body's size when known, so a huge body gets parts large enough. */
  sizeHint?: number;
  /**
   * The body's sha256 when the caller computes it anyway (putBytes: of `body`; putStream: called
   * once the stream has ended, e.g. the FileHash meter's digest). S3 sends it as the SigV4 payload
   * hash instead of hashing the body a second time.
   */
  sha256?: () => Buffer;
}

export interface ObjectStore {
  /** Where the objects go, for logs and messages, e.g. "s3://bucket at http://host:port". No secrets. */
  readonly description: string;
  /** undefined when the object does not exist. */
  head(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined>;
  /** The whole object in memory (narinfo, nix-cache-info); undefined when absent. */
  get(key: string, signal?: AbortSignal): Promise<Buffer | undefined>;
  putBytes(key: string, body: Buffer | string, opts: PutOptions): Promise<void>;
  /**
   * A body of unknown length with bounded memory. On failure nothing is left under `key`, and the
   * body stream is destroyed with the error that is thrown (so a pipeline feeding it settles).
   */
  putStream(key: string, body: Readable, opts: PutOptions): Promise<void>;
  /** Every object whose key starts with `prefix`, page by page. */
  list(prefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo>;
  /** Deleting a key that does not exist is not an error. */
  deleteMany(keys: string[], signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
