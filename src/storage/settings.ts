// Where a binary cache is stored, as the object stores need it: the part of loft's Config that
// openObjectStore reads. It lives here, not in config/, so that storage/ depends on nothing above it;
// config/ validates loft.toml into these shapes.

export interface S3Settings {
  bucket: string;
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
  /** undefined: the AWS SDK's default chain (AWS_ACCESS_KEY_ID/..., AWS_PROFILE, instance roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Merged from TOML, header files and LOFT_EXTRA_HEADER_*; lower-case names. */
  extraHeaders: Record<string, string>;
  /** Multipart part size: default 16, at least 5 (S3's minimum), at most 5120. */
  partSizeMb: number;
  /** Folder inside the bucket holding the cache, with a trailing slash; absent = bucket root. */
  prefix?: string;
  /** Tries per S3 request, the first included (retries back off exponentially with jitter). */
  maxAttempts: number;
  /** Seconds a request may go without a byte moving either way before it is abandoned and retried. */
  requestTimeoutSecs: number;
}

/** Credentials for an HTTP cache, already read from their files (config/http-secrets.ts). */
export type HttpAuth = { kind: 'basic'; user: string; password: string } | { kind: 'bearer'; token: string };

export interface HttpSettings {
  /** http:// or https://, with the cache's path prefix and no trailing slash, no userinfo or query. */
  url: string;
  /** undefined: anonymous requests (a netrc file without an entry for the host gives none too). */
  auth?: HttpAuth;
  /** Merged from TOML, header files and LOFT_EXTRA_HEADER_*; lower-case names. */
  extraHeaders: Record<string, string>;
  /** PEM text of the CA certificates to trust instead of the system's (ca_file). */
  ca?: string;
  /** PEM text of the client certificate and its key, for mutual TLS. */
  clientCert?: string;
  clientKey?: string;
  /** Tries per HTTP request, the first included. */
  maxAttempts: number;
  /** Seconds a request may go without a byte moving either way before it is abandoned and retried. */
  requestTimeoutSecs: number;
}

export type StorageSettings =
  | { kind: 's3'; s3: S3Settings }
  | { kind: 'local'; path: string /* absolute */ }
  | { kind: 'http'; http: HttpSettings };
