// Builds the S3Client every S3 operation goes through: checksums only when required, our retry
// policy (Retry-After honoured), an adaptive limit on requests in flight, timeouts, small GetObject
// bodies read inside the retry loop, and extra headers added after signing.
import { Readable } from 'node:stream';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { BACKOFF, type Backoff } from '../backoff.js';
import type { Logger } from '../log.js';
import { adaptiveConcurrency, limitRequestsInFlight } from './s3-request-limit.js';
import { createRetryStrategy } from './retry.js';
import type { S3Transport } from './s3-direct.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3ClientOptions {
  region: string;
  /** e.g. "https://<account>.r2.cloudflarestorage.com"; undefined means AWS itself. */
  endpoint?: string;
  /** `https://host/bucket/key` instead of `https://bucket.host/key`; most S3 clones want it. */
  forcePathStyle: boolean;
  /** undefined: the SDK's default chain (env, shared config files, instance metadata). */
  credentials?: S3Credentials;
  /** Sent with every request but not signed, e.g. Cloudflare Access service tokens. */
  extraHeaders: Record<string, string>;
  maxAttempts?: number;
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /**
   * Give up on a request (and retry it) when no byte moved either way for this long (default 5 min).
   * An idle limit, not a total one: a large part on a slow link keeps bytes moving and never trips
   * it, while a server that stalls before or in the middle of its answer does.
   */
  requestTimeoutMs?: number;
  /** For deterministic tests of the jitter. */
  random?: () => number;
  /** Retries are logged at debug level (they are expected now and then). */
  logger?: Logger;
  /**
   * Lower the number of requests in flight when the server throttles, and raise it again slowly
   * (src/storage/request-limiter.ts). Default true; false keeps the callers' fixed concurrency
   * (bench/throttle.bench.ts compares the two).
   */
  adaptiveConcurrency?: boolean;
  /**
   * HEAD, GET and PUT of small bodies signed and sent without the SDK's per-request middleware
   * stack (s3-direct.ts), with the SDK's own endpoint, signer and HTTP handler. Default true;
   * false sends every request through the SDK's commands (benches compare the two).
   */
  directRequests?: boolean;
}

/** Give up on a TCP connect after this long; a reachable server answers a connect in milliseconds. */
const CONNECT_TIMEOUT_MS = 10_000;

export function retryPolicyOf(options: S3ClientOptions): Backoff {
  return {
    ...BACKOFF.request,
    ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
    ...(options.retryBaseDelayMs !== undefined ? { baseMs: options.retryBaseDelayMs } : {}),
    ...(options.retryMaxDelayMs !== undefined ? { maxMs: options.retryMaxDelayMs } : {}),
  };
}

/** Delays after a throttled answer: BACKOFF.throttled, shortened by the same options (tests). */
export function throttledPolicyOf(options: S3ClientOptions): Backoff {
  return {
    ...BACKOFF.throttled,
    maxAttempts: options.maxAttempts ?? BACKOFF.throttled.maxAttempts,
    ...(options.retryBaseDelayMs !== undefined ? { baseMs: options.retryBaseDelayMs } : {}),
    ...(options.retryMaxDelayMs !== undefined ? { maxMs: options.retryMaxDelayMs } : {}),
  };
}

export function createS3Client(options: S3ClientOptions): S3Client {
  return createS3Transport(options).client;
}

/**
 * The client and the parts of it that loft's direct small requests share with it (s3-direct.ts):
 * one retry strategy, one limit on requests in flight, the same unsigned extra headers.
 */
export function createS3Transport(options: S3ClientOptions): S3Transport {
  const policy = retryPolicyOf(options);
  const retryStrategy = createRetryStrategy(
    policy,
    options.random,
    (notice) => options.logger?.debug(notice, 'retrying S3 request'),
    { throttled: throttledPolicyOf(options) },
  );
  const config: S3ClientConfig = {
    region: options.region,
    forcePathStyle: options.forcePathStyle,
    // Since SDK 3.729 the default ('WHEN_SUPPORTED') sends stream bodies aws-chunked with a CRC
    // trailer: s3rver stores the framing as data and R2 rejects it (aws-sdk-js-v3 issue 6810).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // The SDK sends `Expect: 100-continue` with every body of 2 MiB or more (each multipart part),
    // and its HTTP handler sends such a request on a fresh connection, never kept alive: two extra
    // round trips per part (handshake, then the wait for `100 Continue`) during which the part's
    // bytes wait. Without it a refused request costs one body sent in vain, a rare failure's cost.
    expectContinueHeader: false,
    maxAttempts: policy.maxAttempts,
    retryStrategy,
    requestHandler: {
      connectionTimeout: CONNECT_TIMEOUT_MS,
      // The socket's idle timeout. The handler's `requestTimeout` is not used: it caps the time until
      // the answer's headers, which includes sending the body, so with 5 GiB parts it would cut
      // off healthy uploads, and it does not cover a stall after the headers at all.
      socketTimeout: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    },
  };
  if (options.endpoint !== undefined) config.endpoint = options.endpoint;
  if (options.credentials !== undefined) config.credentials = { ...options.credentials };
  const client = new S3Client(config);
  addExtraHeaders(client, options.extraHeaders);
  readSmallBodiesInsideRetries(client);
  const limiter = adaptiveConcurrency(options);
  limitRequestsInFlight(client, limiter);
  return { client, limiter, retryStrategy, extraHeaders: options.extraHeaders };
}

/** The options of an SDK command's `send` that carry a caller's abort signal, if there is one. */
export function abortOptions(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal ? { abortSignal: signal } : {};
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;

/** GetObject bodies up to this size are read inside the retry loop (narinfos, nix-cache-info). */
export const BUFFERED_BODY_MAX_BYTES = 16 * 1024 * 1024;

/**
 * GetObject hands back its body as a stream that the caller reads after the SDK's retry middleware
 * has returned, so a connection reset, a stall or a short read in the middle of the body was never
 * retried: one flaky read of nix-cache-info failed a whole upload run. This middleware sits inside
 * the retry loop (deserialize step, below the deserializer) and reads a small body there, so its
 * failure is the request's failure and is retried like any other. Large bodies stay streams.
 */
function readSmallBodiesInsideRetries(client: S3Client): void {
  type Handler = (args: unknown) => Promise<{ response: unknown }>;
  const middleware =
    (next: Handler, context: { commandName?: string }): Handler =>
    async (args) => {
      const result = await next(args);
      if (context.commandName !== 'GetObjectCommand') return result;
      const response = result.response as { headers?: Record<string, string>; body?: unknown };
      const length = Number(response.headers?.['content-length'] ?? Number.NaN);
      if (!(response.body instanceof Readable) || !(length <= BUFFERED_BODY_MAX_BYTES)) return result;
      const chunks: Buffer[] = [];
      for await (const chunk of response.body) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      if (body.length !== length) {
        // Node reports most short reads as 'aborted'; this catches any that end quietly.
        throw Object.assign(new Error(`response body ended after ${body.length} of ${length} bytes`), {
          code: 'ECONNRESET',
        });
      }
      response.body = Readable.from([body], { objectMode: false });
      return result;
    };
  client.middlewareStack.add(middleware as unknown as Parameters<S3Client['middlewareStack']['add']>[0], {
    step: 'deserialize',
    priority: 'low',
    name: 'loftReadSmallBodiesMiddleware',
  });
}

/**
 * Adds headers after the request was signed, so they are sent but are not in SignedHeaders: a
 * proxy in front of the bucket (Cloudflare Access) strips them before the store checks the
 * signature, which would fail if they had been signed. Each retry is signed again and passes here again.
 */
function addExtraHeaders(client: S3Client, headers: Record<string, string>): void {
  const entries = Object.entries(headers);
  if (entries.length === 0) return;
  type Handler = (args: { request: unknown }) => Promise<unknown>;
  const middleware =
    (next: Handler): Handler =>
    (args) => {
      const request = args.request as { headers?: Record<string, string> } | undefined;
      if (request && typeof request.headers === 'object') {
        for (const [name, value] of entries) request.headers[name.toLowerCase()] = value;
      }
      return next(args);
    };
  // The stack's parameter type is a union over every step; ours is a finalizeRequest middleware.
  client.middlewareStack.addRelativeTo(
    middleware as unknown as Parameters<S3Client['middlewareStack']['addRelativeTo']>[0],
    { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'loftExtraHeadersMiddleware' },
  );
}
