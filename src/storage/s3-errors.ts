// S3 failures as loft's errors: one line each with a stable code, naming the bucket, the endpoint
// and what to check, never the credentials, header values or the SDK's message. The HTTP cache's
// counterpart is http-errors.ts.
import { AbortedError, StorageError } from '../errors.js';
import { classifyFailure, errorCodeOf, httpStatusOf } from './retry.js';

const AUTH_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'AuthorizationHeaderMalformed',
  'CredentialsProviderError',
]);

export interface FailureContext {
  /** What was being done, e.g. "put nar/x.nar.zst", "list". */
  operation: string;
  bucket: string;
  /** describeEndpoint(...) */
  where: string;
}

/**
 * One line per failure with a stable code; it names the bucket and endpoint and what to check,
 * and never the credentials, header values or the SDK's message (which may quote request data).
 */
export function toStorageError(err: unknown, ctx: FailureContext): StorageError | AbortedError {
  if (err instanceof StorageError || err instanceof AbortedError) return err;
  if (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError') {
    return new AbortedError(`${ctx.operation} in bucket "${ctx.bucket}" was cancelled`, { cause: err });
  }
  const code = errorCodeOf(err);
  const status = httpStatusOf(err);
  const label = [code, status === undefined ? undefined : `HTTP ${status}`].filter(Boolean).join(', ');
  const on = `bucket "${ctx.bucket}" at ${ctx.where}`;
  if (code === 'NoSuchBucket') {
    return new StorageError(`${on} does not exist (${ctx.operation}): create it or fix the bucket name`, {
      code: 'E_STORAGE_NO_BUCKET',
      cause: err,
    });
  }
  if (status === 401 || status === 403 || (code !== undefined && AUTH_CODES.has(code))) {
    return new StorageError(
      `${on} refused ${ctx.operation} (${label}): check the access key id, secret key, region and permissions`,
      { code: 'E_STORAGE_AUTH', cause: err },
    );
  }
  if (status === undefined && isTlsMismatch(err)) {
    return new StorageError(
      `cannot talk TLS to ${ctx.where} for ${ctx.operation} in bucket "${ctx.bucket}" (${label}): ` +
        'the endpoint may be plain http (write http:// in s3.endpoint) or its TLS set-up is broken',
      { code: 'E_STORAGE_TLS', cause: err },
    );
  }
  const transient = classifyFailure(err) !== 'fatal';
  if (status === undefined && transient) {
    return new StorageError(
      `cannot reach ${ctx.where} for ${ctx.operation} in bucket "${ctx.bucket}" (${label}): check the endpoint URL and the network`,
      { code: 'E_STORAGE_UNREACHABLE', cause: err, transient },
    );
  }
  if (status !== undefined) {
    // Name the request and the answer: "a 500" alone does not say which of thousands of requests.
    const hint =
      status >= 500
        ? "the server failed it after loft's retries: try again later or look at the server's logs"
        : "rerun with --debug to see the server's answer";
    return new StorageError(`${ctx.operation} on ${on} got ${label}: ${hint}`, {
      code: 'E_STORAGE',
      cause: err,
      transient,
    });
  }
  return new StorageError(
    `${ctx.operation} failed on ${on} (${label || 'unknown error'}): rerun with --debug for details`,
    { code: 'E_STORAGE', cause: err, transient },
  );
}

/** Node's and OpenSSL's ways of saying the other side did not answer in TLS (a plain-http port). */
const TLS_MISMATCH_CODES = new Set([
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
]);

function isTlsMismatch(err: unknown): boolean {
  let current = err;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && TLS_MISMATCH_CODES.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
