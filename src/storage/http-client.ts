// Requests to an HTTP binary cache over node:http/https, as Nix's HttpBinaryCacheStore makes them:
// the key appended to the cache's URL, credentials sent with every request (curl sends netrc and
// Basic credentials up front), and a keep-alive connection pool. Retries follow BACKOFF.request
// (storage/retry.ts decides what is worth another try) and honour a `Retry-After` answer.
import * as http from 'node:http';
import * as https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { BACKOFF, backoffDelay, attemptsExhausted, type Backoff } from '../backoff.js';
import type { Logger } from '../log.js';
import { HttpStatusError, saysWrongCredentials } from './http-errors.js';
import { classifyFailure } from './retry.js';
import type { HttpAuth } from './settings.js';

export interface HttpClientOptions {
  /** The cache's URL without a trailing slash. */
  url: string;
  auth?: HttpAuth;
  extraHeaders: Record<string, string>;
  ca?: string;
  clientCert?: string;
  clientKey?: string;
  maxAttempts: number;
  /** A request is abandoned (and retried) when no byte moved for this long. */
  requestTimeoutMs: number;
  retryBaseDelayMs?: number;
  random?: () => number;
  logger?: Logger;
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A `Retry-After` is obeyed up to this long; a server asking for more gets the backoff's delay. */
const RETRY_AFTER_MAX_MS = 120_000;
/** Bodies of answers read into memory stop here (narinfos and listings are far smaller). */
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

export class HttpClient {
  readonly agent: http.Agent;
  readonly policy: Backoff;
  private readonly base: URL;
  private readonly authorization: string | undefined;

  constructor(readonly options: HttpClientOptions) {
    this.base = new URL(`${options.url}/`);
    const tls = this.base.protocol === 'https:';
    const agentOptions = { keepAlive: true, maxSockets: 64, maxFreeSockets: 64 };
    this.agent = tls
      ? new https.Agent({
          ...agentOptions,
          ...(options.ca !== undefined ? { ca: options.ca } : {}),
          ...(options.clientCert !== undefined ? { cert: options.clientCert, key: options.clientKey } : {}),
        })
      : new http.Agent(agentOptions);
    this.authorization = authorizationOf(options.auth);
    this.policy = {
      ...BACKOFF.request,
      maxAttempts: options.maxAttempts,
      ...(options.retryBaseDelayMs !== undefined ? { baseMs: options.retryBaseDelayMs } : {}),
    };
  }

  get sendsCredentials(): boolean {
    return this.authorization !== undefined;
  }

  /** The URL of `key` below the cache (each path segment percent-encoded where HTTP needs it). */
  urlOf(key: string): URL {
    return new URL(key.split('/').map(encodeSegment).join('/'), this.base);
  }

  /** The request's headers: extra headers first, so they can never replace ours. */
  headers(extra: Record<string, string | number> = {}): Record<string, string | number> {
    const out: Record<string, string | number> = { ...this.options.extraHeaders, ...extra };
    if (this.authorization !== undefined) out['authorization'] = this.authorization;
    return out;
  }

  /**
   * One request, retried while the answer (or its absence) is worth another try and attempts
   * remain; the last answer is returned whatever its status. `body` must be replayable.
   */
  async send(
    method: string,
    key: string,
    opts: { headers?: Record<string, string | number>; body?: Buffer; signal?: AbortSignal | undefined } = {},
  ): Promise<HttpAnswer> {
    return this.retrying(method, key, opts.signal, () => this.once(method, key, opts));
  }

  /** Runs `attempt` until it succeeds, fails for good, or attempts run out (see send()). */
  async retrying<T extends { status: number; headers: http.IncomingHttpHeaders }>(
    method: string,
    key: string,
    signal: AbortSignal | undefined,
    attempt: () => Promise<T>,
    /** An answer that must not be retried whatever its status (its body cannot be sent again). */
    isFinal: (answer: T) => boolean = () => false,
  ): Promise<T> {
    for (let tries = 1; ; tries++) {
      let retryAfterMs: number | undefined;
      try {
        const answer = await attempt();
        const failure = new HttpStatusError(answer.status, method, key);
        const final =
          isFinal(answer) || classifyFailure(failure) === 'fatal' || saysWrongCredentials(bodyTextOf(answer));
        if (answer.status < 400 || final || attemptsExhausted(this.policy, tries)) return answer;
        retryAfterMs = retryAfterOf(answer.headers['retry-after']);
      } catch (err) {
        if (classifyFailure(err) === 'fatal' || attemptsExhausted(this.policy, tries) || signal?.aborted)
          throw err;
      }
      const delayMs = Math.max(backoffDelay(this.policy, tries, this.options.random), retryAfterMs ?? 0);
      this.options.logger?.debug({ method, key, retry: tries, delayMs }, 'retrying HTTP request');
      await sleep(delayMs, undefined, signal ? { signal } : undefined);
    }
  }

  /** One attempt: the whole answer in memory (HEAD and PUT answers are empty or tiny). */
  once(
    method: string,
    key: string,
    opts: { headers?: Record<string, string | number>; body?: Buffer; signal?: AbortSignal | undefined },
  ): Promise<HttpAnswer> {
    return new Promise<HttpAnswer>((resolve, reject) => {
      const headers = this.headers(opts.headers);
      if (opts.body !== undefined) headers['content-length'] = opts.body.length;
      const req = this.request(method, key, headers, opts.signal);
      req.once('error', reject);
      req.once('response', (res) => {
        readAll(res, method === 'HEAD' ? 0 : MAX_BUFFERED_BYTES).then(
          (body) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }),
          reject,
        );
      });
      req.end(opts.body);
    });
  }

  /** A request whose body the caller writes; errors and the idle timeout destroy it. */
  request(
    method: string,
    key: string,
    headers: Record<string, string | number>,
    signal: AbortSignal | undefined,
  ): http.ClientRequest {
    const url = this.urlOf(key);
    const send = url.protocol === 'https:' ? https.request : http.request;
    const req = send(url, { method, headers, agent: this.agent, ...(signal ? { signal } : {}) });
    req.setTimeout(this.options.requestTimeoutMs, () => {
      req.destroy(
        Object.assign(new Error(`no byte moved for ${this.options.requestTimeoutMs} ms`), {
          code: 'ETIMEDOUT',
        }),
      );
    });
    return req;
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The start of a buffered answer's body as text (empty for streamed answers). */
export function bodyTextOf(answer: object): string {
  const body = (answer as { body?: unknown }).body;
  return Buffer.isBuffer(body) ? body.subarray(0, 512).toString('utf8') : '';
}

/** The answer's body, at most `limit` bytes (the rest is drained and dropped). */
export async function readAll(res: http.IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of res) {
    const buf = chunk as Buffer;
    if (length < limit) chunks.push(buf.subarray(0, limit - length));
    length += buf.length;
  }
  return Buffer.concat(chunks);
}

/** `Retry-After: <seconds>` or `<HTTP date>`, in ms from now; undefined when absent or unusable. */
export function retryAfterOf(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\s*\d+\s*$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now;
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  return Math.min(ms, RETRY_AFTER_MAX_MS);
}

function authorizationOf(auth: HttpAuth | undefined): string | undefined {
  if (auth === undefined) return undefined;
  if (auth.kind === 'bearer') return `Bearer ${auth.token}`;
  return `Basic ${Buffer.from(`${auth.user}:${auth.password}`, 'utf8').toString('base64')}`;
}

/** Store path names use `+-._?=` besides letters and digits; only what HTTP reserves is encoded. */
function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/%(2B|3D|3A|40|2C|3B|21|24|26|27|28|29|2A)/g, (m) =>
    decodeURIComponent(m),
  );
}
