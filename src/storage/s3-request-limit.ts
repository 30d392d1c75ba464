// The S3 client's side of src/storage/request-limiter.ts: a middleware that takes a place in flight
// for each attempt of each request and gives it back with what the answer said (throttled or not).
import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../log.js';
import { RequestLimiter } from './request-limiter.js';
import { classifyFailure } from './retry.js';

interface AdaptiveOptions {
  adaptiveConcurrency?: boolean;
  logger?: Logger;
}

/** The limiter of one client, as its options ask (adaptive unless `adaptiveConcurrency` is false). */
export function adaptiveConcurrency(options: AdaptiveOptions): RequestLimiter {
  return new RequestLimiter({
    adaptive: options.adaptiveConcurrency ?? true,
    onChange: (limit, inFlight) =>
      options.logger?.debug(
        { limit: limit ?? 'none', inFlight },
        limit === undefined ? 'S3 requests in flight no longer limited' : 'S3 requests in flight limited',
      ),
  });
}

/**
 * Each attempt of each request takes a place from the limiter and gives it back with its outcome.
 * The middleware sits right after the retry middleware (same step), so a retry's backoff sleep holds
 * no place, and a throttled attempt lowers the limit before the next attempt asks for one.
 */
export function limitRequestsInFlight(client: S3Client, limiter: RequestLimiter): void {
  type Handler = (args: unknown) => Promise<unknown>;
  const middleware =
    (next: Handler, context: { __smithy_context?: { abortSignal?: AbortSignal } }): Handler =>
    async (args) => {
      const ticket = await limiter.acquire(context.__smithy_context?.abortSignal);
      try {
        const result = await next(args);
        limiter.release(ticket, 'ok');
        return result;
      } catch (err) {
        limiter.release(ticket, classifyFailure(err) === 'throttling' ? 'throttled' : 'other');
        throw err;
      }
    };
  client.middlewareStack.addRelativeTo(
    middleware as unknown as Parameters<S3Client['middlewareStack']['addRelativeTo']>[0],
    { relation: 'after', toMiddleware: 'retryMiddleware', name: 'loftRequestLimiterMiddleware' },
  );
}
