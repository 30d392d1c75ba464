// An HTTP proxy between loft and the test S3 server that breaks a share of the requests on purpose,
// the ways networks and S3 break: 500 InternalError, 503 SlowDown, a connection reset while the
// request body is still coming, a reset halfway through the response body, a stall until the client
// gives up (before the answer or in the middle of its body), and a response cut short of its
// Content-Length. A seeded PRNG picks the victims, so a run's mix of faults is repeatable (up to
// the order in which concurrent requests arrive).
//
// It never makes the server keep something real S3 would not: each request body is read whole
// before anything is forwarded, so a body cut off in transit is never passed on as complete. Faults
// that happen after forwarding (reset-response, truncate, stall) model an answer lost on the way
// back: the server acted, the client does not know, and must cope with the retry.
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { RecordedRequest } from './s3-server.js';
import { recordOf, s3ErrorXml } from './s3-server.js';

export const FAULT_KINDS = [
  'http-500',
  'http-503',
  'reset-request',
  'reset-response',
  'stall',
  'truncate',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultRecord extends RecordedRequest {
  /** The fault injected into this request, if any. */
  fault?: FaultKind;
  /** True when the request reached the server (whatever happened to the answer). */
  forwarded: boolean;
  /** The server's status, when it was forwarded and answered. */
  status?: number;
}

export interface FaultStats {
  requests: number;
  faulted: number;
  forwarded: number;
  byKind: Record<FaultKind, number>;
}

export interface FaultProxyOptions {
  /** Share of (selected) requests to break, 0 to 1. */
  rate: number;
  seed: number;
  /** Relative weights of the kinds; a kind left out is never injected. Default: all equal. */
  weights?: Partial<Record<FaultKind, number>>;
  /** Only requests this accepts may be broken. Default: all. */
  select?: (r: RecordedRequest) => boolean;
  /** A rate per request instead of `rate` (e.g. more faults for multipart requests); setRate overrides it. */
  rateFor?: (r: RecordedRequest) => number;
}

export interface FaultProxy {
  endpoint: string;
  requests: FaultRecord[];
  stats(): FaultStats;
  /** Change the rate from now on (e.g. 0 to let a final check through). */
  setRate(rate: number): void;
  close(): Promise<void>;
}

/** A request that belongs to a multipart upload: create, part, complete or abort. */
export function isMultipartRequest(r: RecordedRequest): boolean {
  return r.query.has('uploads') || r.query.has('uploadId');
}

/** mulberry32: a tiny seeded PRNG, plenty for picking faults. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function startFaultProxy(target: string, options: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(target);
  const random = seededRandom(options.seed);
  const weights = options.weights ?? Object.fromEntries(FAULT_KINDS.map((k) => [k, 1]));
  let rate: number | undefined;
  const requests: FaultRecord[] = [];
  const sockets = new Set<Socket>();

  const pick = (rec: FaultRecord): FaultKind | undefined => {
    if (options.select && !options.select(rec)) return undefined;
    if (random() >= (rate ?? options.rateFor?.(rec) ?? options.rate)) return undefined;
    // A HEAD answer has no body to cut short.
    const kinds = FAULT_KINDS.filter(
      (k) => (weights[k] ?? 0) > 0 && !(k === 'truncate' && rec.method === 'HEAD'),
    );
    const total = kinds.reduce((n, k) => n + (weights[k] ?? 0), 0);
    let r = random() * total;
    for (const k of kinds) {
      r -= weights[k] ?? 0;
      if (r < 0) return k;
    }
    return kinds.at(-1);
  };

  const server = http.createServer((req, res) => {
    const rec: FaultRecord = { ...recordOf(req), forwarded: false };
    requests.push(rec);
    const fault = pick(rec);
    if (fault !== undefined) rec.fault = fault;
    if (fault === 'reset-request') return resetMidRequest(req);
    void readBody(req).then((body) => {
      if (body === undefined) return; // the client went away mid-body: forward nothing
      if (fault === 'http-500' || fault === 'http-503') return answerError(res, fault);
      forward(
        upstream,
        req,
        body,
        rec,
        (answer, answerBody) => {
          if (fault === 'stall') return stall(res, answer, answerBody);
          if (fault === 'reset-response') return resetMidResponse(res, answer, answerBody);
          if (fault === 'truncate') return truncate(res, answer, answerBody);
          res.writeHead(answer.statusCode ?? 502, answer.headers).end(answerBody);
        },
        () => res.destroy(),
      );
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    stats: () => statsOf(requests),
    setRate: (r) => (rate = r),
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const s of sockets) s.destroy();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

function statsOf(requests: FaultRecord[]): FaultStats {
  const byKind = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  let faulted = 0;
  let forwarded = 0;
  for (const r of requests) {
    if (r.forwarded) forwarded++;
    if (r.fault === undefined) continue;
    faulted++;
    byKind[r.fault]++;
  }
  return { requests: requests.length, faulted, forwarded, byKind };
}

/** The whole request body, or undefined when the client went away before sending all of it. */
function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('close', () => {
      if (!req.complete) resolve(undefined);
    });
    req.on('error', () => resolve(undefined));
  });
}

/** Resets the connection once the first body bytes arrived (or at once for a request without a body). */
function resetMidRequest(req: http.IncomingMessage): void {
  const hasBody =
    Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody) {
    req.socket.destroy();
    return;
  }
  req.once('data', () => req.socket.destroy());
  req.once('end', () => req.socket.destroy());
}

function answerError(res: http.ServerResponse, fault: 'http-500' | 'http-503'): void {
  const [status, code, message] =
    fault === 'http-500'
      ? [500, 'InternalError', 'We encountered an internal error. Please try again.']
      : [503, 'SlowDown', 'Please reduce your request rate.'];
  const body = s3ErrorXml(code, message);
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Half the body, then a reset; an answer without a body is reset before its headers. */
function resetMidResponse(res: http.ServerResponse, answer: http.IncomingMessage, body: Buffer): void {
  if (body.length < 2) {
    res.destroy();
    return;
  }
  res.writeHead(answer.statusCode ?? 502, answer.headers);
  res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
}

/**
 * Holds the answer back until the client gives up: half the body after the headers when there is
 * a body (a stall mid-download), nothing at all otherwise (a stall before the answer).
 */
function stall(res: http.ServerResponse, answer: http.IncomingMessage, body: Buffer): void {
  if (body.length < 2) return;
  res.writeHead(answer.statusCode ?? 502, answer.headers);
  res.write(body.subarray(0, body.length >> 1));
}

/** Headers promising more bytes than follow, then a clean close (FIN, not reset). */
function truncate(res: http.ServerResponse, answer: http.IncomingMessage, body: Buffer): void {
  const headers = { ...answer.headers, 'content-length': String(body.length + 64) };
  delete headers['transfer-encoding'];
  res.writeHead(answer.statusCode ?? 502, headers);
  res.write(body, () => res.socket?.end());
}

/** Sends the request with its complete body to the server and hands over the whole answer. */
function forward(
  upstream: URL,
  req: http.IncomingMessage,
  body: Buffer,
  rec: FaultRecord,
  onAnswer: (answer: http.IncomingMessage, body: Buffer) => void,
  onError: () => void,
): void {
  const headers = { ...req.headers, 'content-length': String(body.length) };
  delete headers['transfer-encoding'];
  const out = http.request(
    { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
    (answer) => {
      if (answer.statusCode !== undefined) rec.status = answer.statusCode;
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => onAnswer(answer, Buffer.concat(chunks)));
      answer.on('error', onError);
    },
  );
  rec.forwarded = true;
  out.on('error', onError);
  out.end(body);
}
