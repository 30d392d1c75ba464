// Failures of an HTTP binary cache as StorageErrors: one line naming the cache's URL, the request
// and what to check, never the credentials or the server's body. An answer with a status becomes
// an HttpStatusError first, shaped so that storage/retry.ts classifies it like an S3 answer
// (`$metadata.httpStatusCode`): 429 and 5xx but 501 are retried, other answers are final.
import { AbortedError, StorageError } from '../errors.js';
import { classifyFailure } from './retry.js';

export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  readonly $metadata: { httpStatusCode: number };
  constructor(
    readonly status: number,
    readonly method: string,
    readonly key: string,
    /** The first bytes of the answer's body, for the few servers that explain themselves there. */
    readonly bodyText: string = '',
  ) {
    super(`${method} ${key === '' ? '/' : key}: HTTP ${status}`);
    this.$metadata = { httpStatusCode: status };
  }
}

export interface HttpFailureContext {
  /** e.g. "put nar/x.nar.zst", "list nar/". */
  operation: string;
  /** The cache's URL, for messages (it never holds credentials: the config refuses them). */
  where: string;
  /** The request sent credentials and is the first that did: see the 500 case below. */
  firstAuthenticated?: boolean;
  /** Set for an https:// cache: whether http.ca_file and a client certificate (mutual TLS) are set. */
  tls?: { caFile: boolean; clientCert: boolean };
}

/** nix-stored's texts for a wrong or missing password (its BasicAuthMiddleware), sent with a 500. */
export function saysWrongCredentials(bodyText: string): boolean {
  return /wrong credentials|corrupt basicauth/i.test(bodyText);
}

export function httpStorageError(err: unknown, ctx: HttpFailureContext): StorageError | AbortedError {
  if (err instanceof StorageError || err instanceof AbortedError) return err;
  if (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError') {
    return new AbortedError(`${ctx.operation} on ${ctx.where} was cancelled`, { cause: err });
  }
  if (err instanceof HttpStatusError) return statusError(err, ctx);
  const code = errnoChain(err);
  if (code !== undefined && TLS_CERT_CODES.has(code)) {
    return new StorageError(
      `the TLS certificate of ${ctx.where} was not accepted for ${ctx.operation} (${code}): ` +
        certificateHint(code, ctx.tls?.caFile === true),
      { code: 'E_STORAGE_TLS', cause: err },
    );
  }
  if (code !== undefined && TLS_MISMATCH_CODES.has(code)) {
    return new StorageError(
      `cannot talk TLS to ${ctx.where} for ${ctx.operation} (${code}): the server may be plain http ` +
        '(write http:// in http.url) or its TLS set-up is broken',
      { code: 'E_STORAGE_TLS', cause: err },
    );
  }
  const transient = classifyFailure(err) !== 'fatal';
  return new StorageError(
    `cannot reach ${ctx.where} for ${ctx.operation} (${code ?? 'unknown error'}): check http.url and the network`,
    { code: 'E_STORAGE_UNREACHABLE', cause: err, transient },
  );
}

function statusError(err: HttpStatusError, ctx: HttpFailureContext): StorageError {
  const { status } = err;
  const on = `${ctx.where} answered HTTP ${status} to ${ctx.operation}`;
  const writing = err.method === 'PUT' || err.method === 'DELETE';
  const mtls = status === 400 ? clientCertificateProblem(err, ctx) : undefined;
  if (mtls !== undefined) return new StorageError(`${on}: ${mtls}`, { code: 'E_STORAGE_TLS', cause: err });
  if (status === 401 || (status === 403 && writing)) {
    const why = status === 401 ? 'the credentials were refused' : 'writing there is forbidden';
    return new StorageError(
      `${on}: ${why}; check http.user and password_file (or token_file, netrc_file) and the server's write permissions`,
      { code: 'E_STORAGE_AUTH', cause: err },
    );
  }
  if (status === 500 && (ctx.firstAuthenticated === true || saysWrongCredentials(err.bodyText))) {
    // nix-stored answers a wrong or missing password with 500, not 401 (its BasicAuthMiddleware).
    return new StorageError(
      `${on}, the first request with credentials: check the credentials (nix-stored answers a wrong ` +
        "user or password with 500), or else the server's log",
      { code: 'E_STORAGE_AUTH', cause: err },
    );
  }
  if (writing && (status === 405 || status === 501)) {
    return new StorageError(
      `${on}: the server takes no ${err.method} there; check http.url and that the server accepts ` +
        'uploads (nginx: dav_methods PUT DELETE)',
      { code: 'E_STORAGE_UNWRITABLE', cause: err },
    );
  }
  if (err.method === 'PUT' && (status === 404 || status === 400) && err.key.endsWith('.nar')) {
    return new StorageError(
      `${on}: the server stores no uncompressed NARs (nix-stored takes only compressed ones); ` +
        'set loft.compression to "zstd" or "xz"',
      { code: 'E_STORAGE_UNWRITABLE', cause: err },
    );
  }
  if (err.method === 'PUT' && (status === 404 || status === 409)) {
    return new StorageError(
      `${on}: the server has no place for it; check http.url (nginx: create_full_put_path on)`,
      { code: 'E_STORAGE_UNWRITABLE', cause: err },
    );
  }
  if (status === 413) {
    return new StorageError(`${on}: the body is too large for the server (nginx: client_max_body_size 0)`, {
      cause: err,
    });
  }
  const transient = classifyFailure(err) !== 'fatal';
  const hint = transient
    ? "the server failed it after loft's retries: try again later or look at the server's log"
    : "rerun with --debug to see the server's answer";
  return new StorageError(`${on}: ${hint}`, { cause: err, transient });
}

/**
 * What a 400 says about loft's client certificate, or undefined. nginx with `ssl_verify_client on`
 * completes the TLS handshake without one and then answers every request 400, with "No required
 * SSL certificate was sent" or "The SSL certificate error" in an HTML body; a HEAD's answer has no
 * body, so a bodiless 400 on an https cache loft gives no certificate is read the same way.
 */
function clientCertificateProblem(err: HttpStatusError, ctx: HttpFailureContext): string | undefined {
  if (ctx.tls === undefined) return undefined;
  const set = 'set http.client_cert_file and http.client_key_file to a certificate and key it accepts';
  if (/no required ssl certificate/i.test(err.bodyText)) {
    return `the server requires a client certificate (mutual TLS) and loft sent none; ${set}`;
  }
  if (err.bodyText === '' && !ctx.tls.clientCert) {
    return `the server probably requires a client certificate (mutual TLS: nginx answers 400 without one); ${set}`;
  }
  if (/ssl certificate error/i.test(err.bodyText)) {
    return (
      "the server refused loft's client certificate; check that http.client_cert_file is signed by " +
      'a CA the server trusts, has not expired, and matches http.client_key_file'
    );
  }
  return undefined;
}

/** What to do about a server certificate Node refused with `code`. */
function certificateHint(code: string, caFile: boolean): string {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return "it does not name the host of http.url (its subjectAltName must list the URL's host or IP)";
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return "renew the server certificate, or check this machine's clock";
  }
  return caFile
    ? 'it is not signed by a CA in http.ca_file; set ca_file to the CA that signed it'
    : "it is not signed by a CA this machine trusts; set http.ca_file to the CA that signed it (a private CA's certificate, PEM)";
}

const TLS_CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
const TLS_MISMATCH_CODES = new Set([
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
]);

function errnoChain(err: unknown): string | undefined {
  let current = err;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
