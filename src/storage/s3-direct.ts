// Small S3 requests (HEAD, GET of a narinfo, PUT of a body held in memory) without the SDK's
// per-request middleware stack. A push sends two or three such requests per store path, and the
// stack cost about 0.5 ms of CPU each on top of the 0.2 ms that signing and HTTP cost
// (docs/architecture.md, "Small S3 requests without the SDK's middleware stack").
//
// Every part that decides what goes on the wire or what an answer means is the SDK's own,
// learnt once per bucket (s3-direct-route.ts): endpoint, path, signer, credentials, clock offset,
// HTTP handler and connection pool, error deserializer. What this file does per request is what the
// stack's middlewares did: the retry loop with loft's strategy (retry.ts), a place from the
// request limiter per attempt (s3-request-limit.ts), the small body read inside the attempt,
// S3's error-in-a-200 check, the clock-skew bookkeeping and the unsigned extra headers.
import { setTimeout as sleep } from 'node:timers/promises';
import type { RequestLimiter } from './request-limiter.js';
import { classifyFailure, type RetryToken } from './retry.js';
import {
  learnDirectRoute,
  type DirectCommand,
  type DirectRoute,
  type WireRequest,
  type WireResponse,
} from './s3-direct-route.js';
import type { S3Client } from '@aws-sdk/client-s3';

/** loft's retry strategy, as createRetryStrategy (retry.ts) makes it. */
export interface DirectRetryStrategy {
  acquireInitialRetryToken(scope: string): Promise<RetryToken>;
  refreshRetryTokenForRetry(previous: RetryToken, info: { error?: unknown }): Promise<RetryToken>;
  recordSuccess(token: RetryToken): void;
}

/** What the S3 client is made of (s3-client.ts, createS3Transport). */
export interface S3Transport {
  client: S3Client;
  limiter: RequestLimiter;
  retryStrategy: DirectRetryStrategy;
  /** Sent with every request, unsigned (s3-client.ts, addExtraHeaders). */
  extraHeaders: Record<string, string>;
}

export interface DirectRequest {
  command: DirectCommand;
  /** The whole key, the store's prefix included, not yet encoded. */
  key: string;
  /** Lower-case names: content-type, content-encoding, if-none-match, x-amz-content-sha256. */
  headers: Record<string, string>;
  body?: Buffer;
  signal?: AbortSignal;
}

export interface DirectAnswer {
  headers: Record<string, string>;
  body: Buffer;
}

const METHODS: Record<DirectCommand, string> = { HeadObject: 'HEAD', GetObject: 'GET', PutObject: 'PUT' };

export class S3DirectRequests {
  #route: Promise<DirectRoute | undefined> | undefined;

  constructor(
    private readonly transport: S3Transport,
    private readonly bucket: string,
  ) {}

  /**
   * The bucket's route, learnt on first use and kept; undefined: send this request through the
   * SDK. A probe that failed is not kept: the next request probes again.
   */
  route(): Promise<DirectRoute | undefined> {
    const route = (this.#route ??= learnDirectRoute(this.transport.client, this.bucket));
    return route.catch(() => {
      if (this.#route === route) this.#route = undefined;
      return undefined;
    });
  }

  /**
   * Sends `request` as the SDK's retry middleware would: each failed attempt goes to the retry
   * strategy, whose refusal ends the loop with that attempt's error (with `$metadata.attempts`).
   */
  async send(route: DirectRoute, request: DirectRequest): Promise<DirectAnswer> {
    const strategy = this.transport.retryStrategy;
    let token = await strategy.acquireInitialRetryToken('');
    let totalRetryDelay = 0;
    for (;;) {
      try {
        const answer = await this.attempt(route, request);
        strategy.recordSuccess(token);
        return answer;
      } catch (err) {
        try {
          token = await strategy.refreshRetryTokenForRetry(token, { error: err });
        } catch {
          throw withAttempts(err, token.getRetryCount() + 1, totalRetryDelay);
        }
        const delay = token.getRetryDelay();
        totalRetryDelay += delay;
        // Cut short by the request's signal with an AbortError, as the SDK's wait is.
        if (delay > 0) await sleep(delay, undefined, request.signal ? { signal: request.signal } : {});
      }
    }
  }

  /** One attempt under a place from the limiter, given back with what the answer said. */
  private async attempt(route: DirectRoute, request: DirectRequest): Promise<DirectAnswer> {
    const { limiter } = this.transport;
    const ticket = await limiter.acquire(request.signal);
    try {
      const answer = await exchange(route, request, this.transport.extraHeaders);
      limiter.release(ticket, 'ok');
      return answer;
    } catch (err) {
      limiter.release(ticket, classifyFailure(err) === 'throttling' ? 'throttled' : 'other');
      throw err;
    }
  }
}

/**
 * Signs, sends and reads one answer. The signing date and the bookkeeping around it follow
 * AwsSdkSigV4Signer (@aws-sdk/core): the clock offset learnt from earlier answers corrects the
 * local clock, and each answer's Date header (or an error's ServerTime) updates it.
 */
async function exchange(
  route: DirectRoute,
  request: DirectRequest,
  extraHeaders: Record<string, string>,
): Promise<DirectAnswer> {
  const { config } = route;
  const properties: Record<string, unknown> = {
    config,
    _disableClockSkewCorrection: !route.skewCorrection,
    _skipClockSkewSampling: !route.skewCorrection,
  };
  if (route.skewCorrection) {
    properties._preRequestSystemClockOffset = config.systemClockOffset;
    properties._requestSentAt = Date.now();
  }
  const signed = await route.signer.sign(wireRequest(route, request), {
    signingDate: route.skewCorrection ? new Date(Date.now() + config.systemClockOffset) : new Date(),
    signingRegion: route.signingRegion,
    signingService: route.signingName,
  });
  // After signing, as the SDK path's middleware does: sent, not in SignedHeaders.
  for (const [name, value] of Object.entries(extraHeaders)) signed.headers[name.toLowerCase()] = value;
  try {
    const options = request.signal ? { abortSignal: request.signal } : {};
    const { response } = await config.requestHandler.handle(signed, options);
    const body = await readBody(response, request.command);
    if (!isSuccess(response, body, request.command)) {
      response.body = body;
      throw await route.errorOf(request.command, response);
    }
    route.schemeSigner.successHandler?.(response, properties);
    return { headers: response.headers, body };
  } catch (err) {
    if (!route.schemeSigner.errorHandler) throw err;
    return route.schemeSigner.errorHandler(properties)(err);
  }
}

function wireRequest(route: DirectRoute, request: DirectRequest): WireRequest {
  return {
    method: METHODS[request.command],
    protocol: route.protocol,
    hostname: route.hostname,
    ...(route.port !== undefined ? { port: route.port } : {}),
    path: route.pathPrefix + encodeKey(request.key),
    query: {},
    headers: {
      ...route.headers,
      ...request.headers,
      ...(request.body !== undefined ? { 'content-length': String(request.body.length) } : {}),
    },
    ...(request.body !== undefined ? { body: request.body } : {}),
  };
}

/**
 * A key as the SDK's REST serializer puts a greedy label (`/{Key+}`) into the path: each segment
 * percent-encoded like encodeURIComponent, plus `!'()*` (RFC 3986's reserved set), the slashes kept.
 */
export function encodeKey(key: string): string {
  return key
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment).replace(
        /[!'()*]/g,
        (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
      ),
    )
    .join('/');
}

/**
 * 2xx, except what S3's SDK middleware (throw200Exceptions) reads as a failure: an answer to a
 * PUT or HEAD whose body is an error document, which S3 sends with 200 when it fails late.
 */
function isSuccess(response: WireResponse, body: Buffer, command: DirectCommand): boolean {
  if (!isGood(response)) return false;
  if (command === 'GetObject' || body.length === 0) return true;
  if (!body.subarray(-16).toString('utf8').endsWith('</Error>')) return true;
  response.statusCode = 503;
  return false;
}

/**
 * The whole body, read inside the attempt so that a reset, a stall (the handler's socket timeout
 * destroys the request) or a short read fails the attempt and is retried, as
 * readSmallBodiesInsideRetries (s3-client.ts) does for the SDK's GetObject.
 */
function readBody(response: WireResponse, command: DirectCommand): Promise<Buffer> {
  const stream = response.body as NodeJS.ReadableStream;
  const declared = Number(response.headers['content-length'] ?? Number.NaN);
  const checkLength = command === 'GetObject' && isGood(response) && declared >= 0;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const shortRead = () =>
      // Node reports most short reads as 'aborted'; this catches any that end quietly.
      Object.assign(new Error(`response body ended after ${length} of ${declared} bytes`), {
        code: 'ECONNRESET',
      });
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
    });
    let ended = false;
    stream.once('error', reject);
    stream.once('close', () => {
      if (!ended) reject(shortRead());
    });
    stream.once('end', () => {
      ended = true;
      if (checkLength && length !== declared) return reject(shortRead());
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length));
    });
  });
}

function isGood(response: WireResponse): boolean {
  return response.statusCode >= 200 && response.statusCode < 300;
}

/** The SDK's retry middleware gives up with the last attempt's error, `$metadata.attempts` set. */
function withAttempts(err: unknown, attempts: number, totalRetryDelay: number): unknown {
  const error =
    err instanceof Error ? err : Object.assign(new Error(String(err)), typeof err === 'object' ? err : {});
  const fields = error as { $metadata?: Record<string, unknown> };
  fields.$metadata ??= {};
  fields.$metadata.attempts = attempts;
  fields.$metadata.totalRetryDelay = totalRetryDelay;
  return error;
}
