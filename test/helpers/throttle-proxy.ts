// A proxy that throttles like S3 does under load: above a request rate it answers 503 SlowDown with
// a Retry-After header instead of forwarding. A token bucket holds `burst` requests and refills at
// `ratePerSecond`; each forwarded request also waits `latencyMs` first, as over a real network, so
// the rate a client reaches depends on how many requests it keeps in flight (Little's law) and a
// client that lowers its concurrency is throttled less.
// It records every request and every throttled answer with the earliest time Retry-After allows a
// retry of that same request, so a test can check that no retry came sooner.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { forwardRequest, s3ErrorXml } from './s3-server.js';

export interface ThrottleProxyOptions {
  /** Where allowed requests go (the recording proxy of test/helpers/s3-server.ts, or s3rver). */
  target: string;
  ratePerSecond: number;
  burst: number;
  latencyMs?: number;
  /** The Retry-After value of a throttled answer, given the time it is sent (default "2"). */
  retryAfter?: (now: number) => string;
}

export interface SeenRequest {
  /** Method, path and query: the same request retried has the same id. */
  id: string;
  at: number;
  throttled: boolean;
  /** For a throttled answer: no retry of `id` may arrive before this (ms since the epoch). */
  notBefore?: number;
}

export interface ThrottleProxy {
  endpoint: string;
  seen: SeenRequest[];
  /** How many answers were 503 SlowDown. */
  throttled(): number;
  /** Retries of a throttled request that arrived before its Retry-After allowed. */
  earlyRetries(): Array<{ id: string; earlyByMs: number }>;
  close(): Promise<void>;
}

export async function startThrottleProxy(o: ThrottleProxyOptions): Promise<ThrottleProxy> {
  const upstream = new URL(o.target);
  const seen: SeenRequest[] = [];
  let tokens = o.burst;
  let refilledAt = Date.now();
  const takeToken = (now: number): boolean => {
    tokens = Math.min(o.burst, tokens + ((now - refilledAt) / 1000) * o.ratePerSecond);
    refilledAt = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
  const server = http.createServer((req, res) => {
    const now = Date.now();
    const id = `${req.method ?? 'GET'} ${req.url ?? '/'}`;
    if (!takeToken(now)) {
      const retryAfter = (o.retryAfter ?? (() => '2'))(now);
      seen.push({ id, at: now, throttled: true, notBefore: notBefore(retryAfter, now) });
      const body = s3ErrorXml('SlowDown', 'Please reduce your request rate.');
      req.resume();
      req.on('end', () =>
        res
          .writeHead(503, {
            'content-type': 'application/xml',
            'content-length': Buffer.byteLength(body),
            'retry-after': retryAfter,
          })
          .end(body),
      );
      return;
    }
    seen.push({ id, at: now, throttled: false });
    req.pause();
    void sleep(o.latencyMs ?? 0).then(() => forwardRequest(upstream, req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    throttled: () => seen.filter((s) => s.throttled).length,
    earlyRetries: () => earlyRetries(seen),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** The earliest retry time a Retry-After value allows (seconds, or an HTTP-date). */
function notBefore(retryAfter: string, now: number): number {
  return /^\d+$/.test(retryAfter) ? now + Number(retryAfter) * 1000 : Date.parse(retryAfter);
}

function earlyRetries(seen: SeenRequest[]): Array<{ id: string; earlyByMs: number }> {
  const early: Array<{ id: string; earlyByMs: number }> = [];
  seen.forEach((s, i) => {
    if (!s.throttled || s.notBefore === undefined) return;
    const next = seen.slice(i + 1).find((later) => later.id === s.id);
    if (next && next.at < s.notBefore) early.push({ id: s.id, earlyByMs: s.notBefore - next.at });
  });
  return early;
}
