// One module for every failure loft reports. Each class has a literal `name` and a stable `code`
// (for logs and tests) and maps to a documented process exit code (for scripts and systemd).
// Pure code throws these; the CLI and the per-path work item are the only places that catch them.

/** Process exit codes. Documented in the README; never renumber. */
export const ExitCode = {
  ok: 0,
  /** Some requested paths are not in the cache afterwards (each failure was logged). */
  partial: 1,
  /** Bad command line. */
  usage: 2,
  /** Bad configuration: config file, values, signing key. */
  config: 3,
  /** The object store refused or could not be reached (endpoint, bucket, credentials). */
  storage: 4,
  /** Nix is missing or failed, or a path is not a valid store path. */
  nix: 5,
  /** `loft verify` found problems in the cache (or `--repair` left some unmended). */
  problems: 6,
  /** A bug: an error loft did not expect. */
  internal: 70,
  /** `--wait` gave up: its --timeout passed with paths still queued (as coreutils' timeout(1)). */
  timeout: 124,
  /** Stopped by a second SIGINT/SIGTERM. */
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * What a StorageError says about the target. Matched by callers (the upload pool stops on the codes
 * of TARGET_FAILURES; the daemon's start check reads `transient`), so the set is closed: a new kind
 * of failure gets a name here first.
 */
export type StorageErrorCode =
  | 'E_STORAGE'
  | 'E_STORAGE_NO_BUCKET'
  | 'E_STORAGE_AUTH'
  | 'E_STORAGE_TLS'
  | 'E_STORAGE_UNREACHABLE'
  | 'E_STORAGE_NOT_S3'
  | 'E_STORAGE_UNWRITABLE'
  /** The store cannot list its keys (an HTTP cache without WebDAV PROPFIND). */
  | 'E_STORAGE_NO_LISTING'
  /** An HTTP URL whose nix-cache-info is not one: not a binary cache (a fallback page, say). */
  | 'E_STORAGE_NOT_CACHE';

/** Every code a LoftError (or a failed path's report) can carry; E_INTERNAL marks a bug. */
export type ErrorCode =
  | 'E_FORMAT'
  | 'E_KEY'
  | 'E_CONFIG'
  | 'E_USAGE'
  | 'E_INVALID_PATH'
  | 'E_UNSUPPORTED_FILE'
  | 'E_NIX'
  | 'E_CORRUPT_PATH'
  | 'E_DEPENDENCY_FAILED'
  | 'E_PRUNE_BUSY'
  | 'E_PRUNE_CONFLICT'
  | 'E_ABORTED'
  | 'E_INTERNAL'
  | StorageErrorCode;

export abstract class LoftError extends Error {
  abstract override readonly name: string;
  abstract readonly code: ErrorCode;
  abstract readonly exitCode: ExitCodeValue;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Malformed data in a Nix format (hash, store path, narinfo, path-info JSON, key). */
export class FormatError extends LoftError {
  override readonly name = 'FormatError';
  readonly code = 'E_FORMAT';
  readonly exitCode = ExitCode.nix;
}

/** A signing or public key that cannot be used. */
export class KeyError extends LoftError {
  override readonly name = 'KeyError';
  readonly code = 'E_KEY';
  readonly exitCode = ExitCode.config;
}

/** A configuration value or file that cannot be used. */
export class ConfigError extends LoftError {
  override readonly name = 'ConfigError';
  readonly code = 'E_CONFIG';
  readonly exitCode = ExitCode.config;
}

/** A command-line mistake. */
export class UsageError extends LoftError {
  override readonly name = 'UsageError';
  readonly code = 'E_USAGE';
  readonly exitCode = ExitCode.usage;
}

/** A path that is not in the store, or that Nix says is not valid. */
export class InvalidPathError extends LoftError {
  override readonly name = 'InvalidPathError';
  readonly code = 'E_INVALID_PATH';
  readonly exitCode = ExitCode.nix;
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/** A file type a NAR cannot hold (socket, FIFO, device). */
export class UnsupportedFileError extends LoftError {
  override readonly name = 'UnsupportedFileError';
  readonly code = 'E_UNSUPPORTED_FILE';
  readonly exitCode = ExitCode.nix;
  constructor(
    readonly path: string,
    readonly kind: string,
  ) {
    super(`cannot put ${kind} ${path} into a NAR: only regular files, directories and symlinks`);
  }
}

/** Running `nix` failed (not installed, crashed, unexpected output). */
export class NixError extends LoftError {
  override readonly name = 'NixError';
  readonly code = 'E_NIX';
  readonly exitCode = ExitCode.nix;
}

/** The store path's contents do not match what Nix registered (changed after registration). */
export class CorruptPathError extends LoftError {
  override readonly name = 'CorruptPathError';
  readonly code = 'E_CORRUPT_PATH';
  readonly exitCode = ExitCode.partial;
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/** The object store failed after retries, refused credentials, or the bucket is missing. */
export class StorageError extends LoftError {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;
  readonly exitCode = ExitCode.storage;
  /**
   * True when asking again later may succeed (connection refused, a timeout, a 5xx or throttling
   * answer); false for a definite answer (no such bucket, access denied, not S3), which only a
   * change of configuration can fix. The daemon waits out the first kind and exits on the second.
   */
  readonly transient: boolean;
  constructor(
    message: string,
    options: { code?: StorageErrorCode; cause?: unknown; transient?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code ?? 'E_STORAGE';
    this.transient = options.transient ?? false;
  }
}

/** Failures of the whole target, not of one path: an upload run stops at the first of these. */
const TARGET_FAILURES: ReadonlySet<StorageErrorCode> = new Set([
  'E_STORAGE_AUTH',
  'E_STORAGE_NO_BUCKET',
  'E_STORAGE_NOT_S3',
  'E_STORAGE_NOT_CACHE',
  'E_STORAGE_UNWRITABLE',
]);

/** Wrong credentials, no bucket, not S3, an unwritable directory: every other upload is pointless. */
export function isTargetFailure(err: unknown): err is StorageError {
  return err instanceof StorageError && TARGET_FAILURES.has(err.code);
}

/** A path's narinfo was not written because one of its references failed to upload. */
export class DependencyFailedError extends LoftError {
  override readonly name = 'DependencyFailedError';
  readonly code = 'E_DEPENDENCY_FAILED';
  readonly exitCode = ExitCode.partial;
}

/** Another prune holds the lock (in this process or another one on this host). */
export class PruneBusyError extends LoftError {
  override readonly name = 'PruneBusyError';
  readonly code = 'E_PRUNE_BUSY';
  readonly exitCode = ExitCode.partial;
}

/** A prune on some host is deleting what this path needs: upload it in a later batch. */
export class PruneConflictError extends LoftError {
  override readonly name = 'PruneConflictError';
  readonly code = 'E_PRUNE_CONFLICT';
  readonly exitCode = ExitCode.partial;
}

/** Work stopped because loft is shutting down. */
export class AbortedError extends LoftError {
  override readonly name = 'AbortedError';
  readonly code = 'E_ABORTED';
  readonly exitCode = ExitCode.interrupted;
}

export function isLoftError(err: unknown): err is LoftError {
  return err instanceof LoftError;
}

/**
 * Whether a path's whole upload is worth trying again (the uploader's per-path retry; the SDK has
 * already retried each request). Not when trying again cannot change the answer: the path's
 * contents differ from what Nix registered, the whole target refuses (every other path would fail
 * the same way, and the run or the daemon's access-lost state handles it), a reference failed, a
 * prune is deleting the path (a later batch uploads it), or loft is shutting down.
 */
export function isRetryablePathError(err: unknown): boolean {
  return !(
    err instanceof CorruptPathError ||
    isTargetFailure(err) ||
    err instanceof DependencyFailedError ||
    err instanceof PruneConflictError ||
    err instanceof AbortedError
  );
}

/**
 * A path as shown in a message: quoted as JSON when it holds control characters, so a newline in
 * a file name cannot split a report line or forge another, and no raw control byte reaches a
 * terminal. Ordinary paths are shown as they are.
 */
export function shownPath(p: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x1f\x7f]/.test(p) ? JSON.stringify(p) : p;
}

export function oneLine(err: unknown): string {
  if (err instanceof Error) return err.message.replace(/\s*\n\s*/g, ' ');
  return String(err);
}
