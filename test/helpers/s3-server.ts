// A real S3 server for tests: s3rver in-process on 127.0.0.1, port 0, behind a small recording
// proxy so tests can count requests (one PUT for a small NAR, an AbortMultipartUpload, ...).
// With LOFT_TEST_S3_ENDPOINT (and _BUCKET, _REGION, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY) set, the
// same tests run against that endpoint instead, under a key prefix unique to the run; requests are
// then not recorded and tests that count them say so and skip that assertion.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { registerSecretWithEncodings } from './test-secrets.js';

export interface RecordedRequest {
  method: string;
  /** Path and query as sent, e.g. "/bucket/nar/x.nar.zst?uploadId=..." */
  url: string;
  bucket: string;
  /** Object key, decoded; "" for bucket-level requests. */
  key: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
}

export interface TestS3 {
  /** What clients should talk to (the recording proxy in front of s3rver). */
  endpoint: string;
  /** s3rver itself, for proxies that tests put in front of it; equals endpoint in external mode. */
  backend: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** "" for s3rver; unique per run against an external endpoint. */
  keyPrefix: string;
  /** s3rver's data directory; undefined in external mode. */
  dir: string | undefined;
  external: boolean;
  /** Every request the proxy saw, oldest first; always empty in external mode. */
  requests: RecordedRequest[];
  close(): Promise<void>;
}

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: http.Server;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;
// s3rver ships no type declarations; this is the part of its API the tests use.
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
// s3rver knows the key pairs of its one account; tests add theirs to it.
const S3rverAccount = createRequire(import.meta.url)('s3rver/lib/models/account.js') as {
  DUMMY_ACCOUNT: { createKeyPair(accessKeyId: string, secretAccessKey: string): void };
};

export async function startS3Server(options: { bucket?: string } = {}): Promise<TestS3> {
  const external = process.env.LOFT_TEST_S3_ENDPOINT;
  if (external) return externalS3(external);
  const bucket = options.bucket ?? 'loft-test';
  const dir = await mkdtemp(join(tmpdir(), 'loft-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const address = await server.run();
  const backend = `http://127.0.0.1:${address.port}`;
  // Distinctive credentials per server, registered for the suite-wide secret check: a leak of
  // s3rver's default "S3RVER" pair could not be told apart from ordinary words in a log.
  const accessKeyId = `LOFTTEST${randomBytes(6).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(24).toString('base64url');
  S3rverAccount.DUMMY_ACCOUNT.createKeyPair(accessKeyId, secretAccessKey);
  registerSecretWithEncodings('S3 access key id', accessKeyId);
  registerSecretWithEncodings('S3 secret key', secretAccessKey);
  const proxy = await startForwardingProxy(backend);
  return {
    endpoint: proxy.endpoint,
    backend,
    bucket,
    region: 'us-east-1',
    accessKeyId,
    secretAccessKey,
    keyPrefix: '',
    dir,
    external: false,
    requests: proxy.requests,
    async close() {
      await proxy.close();
      // Node stops timing requests out once a server closes, so a connection the proxy left
      // mid-request would hold close() for ever (a whole CI run once hung here): cut them all.
      server.httpServer?.closeAllConnections();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function externalS3(endpoint: string): TestS3 {
  const env = (name: string): string => {
    const value = process.env[`LOFT_TEST_S3_${name}`];
    if (!value) throw new Error(`LOFT_TEST_S3_ENDPOINT is set, so LOFT_TEST_S3_${name} must be set too`);
    return value;
  };
  registerSecretWithEncodings('S3 access key id', env('ACCESS_KEY_ID'));
  registerSecretWithEncodings('S3 secret key', env('SECRET_ACCESS_KEY'));
  const s3: TestS3 = {
    endpoint,
    backend: endpoint,
    bucket: env('BUCKET'),
    region: process.env.LOFT_TEST_S3_REGION ?? 'us-east-1',
    accessKeyId: env('ACCESS_KEY_ID'),
    secretAccessKey: env('SECRET_ACCESS_KEY'),
    keyPrefix: `loft-test-${Date.now()}-${randomBytes(4).toString('hex')}/`,
    dir: undefined,
    external: true,
    requests: [],
    async close() {
      // Leave nothing behind in a shared bucket.
      const store = new S3ObjectStore({ ...storeOptionsFor(s3), keyPrefix: s3.keyPrefix });
      const keys: string[] = [];
      for await (const o of store.list('')) keys.push(o.key);
      await store.deleteMany(keys);
      await store.close();
    },
  };
  return s3;
}

/** Options for an S3ObjectStore on this server (tests spread and override them). */
export function storeOptionsFor(s3: TestS3) {
  return {
    bucket: s3.bucket,
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    extraHeaders: {} as Record<string, string>,
    partSizeBytes: 5 * 1024 * 1024,
    keyPrefix: s3.keyPrefix,
  };
}

/** What an interceptor may do with a request: answer it itself, or forward it with other headers. */
export type InterceptResult =
  | { respond: { status: number; headers?: Record<string, string>; body?: string } }
  | { forwardHeaders: http.OutgoingHttpHeaders };

export interface ForwardingProxy {
  endpoint: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy to `target` that records every request. `intercept` sees each request first and
 * may answer it (fault injection, auth failures) or change the headers that are forwarded.
 */
export async function startForwardingProxy(
  target: string,
  intercept?: (req: http.IncomingMessage, record: RecordedRequest) => InterceptResult | undefined,
): Promise<ForwardingProxy> {
  const upstream = new URL(target);
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const record = recordOf(req);
    requests.push(record);
    const decision = intercept?.(req, record);
    if (decision && 'respond' in decision) {
      const { status, headers = {}, body = '' } = decision.respond;
      // Read the whole body first, so the client is not cut off mid-upload (EPIPE) but gets the answer.
      req.resume();
      req.on('end', () =>
        res.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers }).end(body),
      );
      return;
    }
    forwardRequest(upstream, req, res, decision?.forwardHeaders ?? req.headers);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** Passes one request on to `upstream` and its answer back. */
export function forwardRequest(
  upstream: URL,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  headers: http.OutgoingHttpHeaders = req.headers,
): void {
  // A client gone before this was called (the throttling proxy waits first) has nothing to pass on.
  if (req.destroyed) {
    res.destroy();
    return;
  }
  const out = http.request(
    { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  out.on('error', () => res.destroy());
  // A client that went away mid-body must not leave the upstream request (and the server's
  // connection) waiting for the rest for ever: that would hang close() at the end of a test.
  req.on('close', () => {
    if (!req.complete) out.destroy();
  });
  // Nor may a client connection cut after the body arrived, before all of it was passed on.
  res.on('close', () => {
    if (!res.writableFinished) out.destroy();
  });
  req.pipe(out);
}

/** What a test sees of a request: method, bucket, key and query decoded the way S3 reads them. */
export function recordOf(req: http.IncomingMessage): RecordedRequest {
  const url = new URL(req.url ?? '/', 'http://proxy');
  const [, bucket = '', ...rest] = url.pathname.split('/');
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    bucket: decodeURIComponent(bucket),
    key: decodeURIComponent(rest.join('/')),
    query: url.searchParams,
    headers: { ...req.headers },
  };
}

/** An S3-style XML error body. */
export function s3ErrorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>loft-test</RequestId></Error>`;
}
