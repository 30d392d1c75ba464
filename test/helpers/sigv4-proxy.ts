// A proxy that checks AWS Signature Version 4 like S3 does, because s3rver accepts any signature.
// It also plays Cloudflare Access: configured extra headers must arrive with the right values and
// are removed before the signature is checked and the request forwarded. A client that signed
// them therefore fails with SignatureDoesNotMatch, as it would against R2 behind Access.
//
// Canonical request (AWS SigV4, as S3 applies it: the path is used as sent, not normalized):
//   METHOD \n PATH \n sorted, strictly escaped QUERY \n name:value per signed header \n \n
//   signed;header;names \n x-amz-content-sha256
// String to sign: "AWS4-HMAC-SHA256" \n X-Amz-Date \n scope \n hex(sha256(canonical request)),
// key = HMAC chain over "AWS4"+secret, date, region, service, "aws4_request".
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { s3ErrorXml, startForwardingProxy, type InterceptResult } from './s3-server.js';

export interface SigV4ProxyOptions {
  /** Where verified requests go (s3rver). */
  target: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Header name -> value that must be present, unsigned, and is stripped before forwarding. */
  requiredHeaders?: Record<string, string>;
}

export interface VerifiedRequest {
  method: string;
  url: string;
  signedHeaders: string[];
  /** The required headers as they arrived (undefined when missing). */
  extraHeaders: Record<string, string | undefined>;
  /** 'ok', or the S3 error code the proxy answered with. */
  verdict: string;
}

export interface SigV4Proxy {
  endpoint: string;
  seen: VerifiedRequest[];
  /**
   * The secret requests must be signed with from now on: a different one plays credentials
   * revoked (every request answered 403 SignatureDoesNotMatch), the original one their return.
   */
  setSecret(secretAccessKey: string): void;
  /** Called with each request before it is checked (a test may change the secret there). */
  onRequest?: (req: IncomingMessage) => void;
  close(): Promise<void>;
}

export async function startSigV4Proxy(options: SigV4ProxyOptions): Promise<SigV4Proxy> {
  const seen: VerifiedRequest[] = [];
  const current = { ...options };
  const proxy = await startForwardingProxy(options.target, (req) => {
    handle.onRequest?.(req);
    const { result, record } = check(req, current);
    seen.push(record);
    return result;
  });
  const handle: SigV4Proxy = {
    endpoint: proxy.endpoint,
    seen,
    setSecret: (secret) => {
      current.secretAccessKey = secret;
    },
    close: () => proxy.close(),
  };
  return handle;
}

function check(
  req: IncomingMessage,
  options: SigV4ProxyOptions,
): { result: InterceptResult; record: VerifiedRequest } {
  const required = options.requiredHeaders ?? {};
  const headers = headerMap(req.rawHeaders);
  const auth = parseAuthorization(headers.get('authorization') ?? '');
  const record: VerifiedRequest = {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    signedHeaders: auth?.signedHeaders ?? [],
    extraHeaders: Object.fromEntries(Object.keys(required).map((n) => [n, headers.get(n.toLowerCase())])),
    verdict: 'ok',
  };
  const deny = (code: string, message: string): { result: InterceptResult; record: VerifiedRequest } => {
    record.verdict = code;
    const body = s3ErrorXml(code, message);
    return {
      result: { respond: { status: 403, headers: { 'content-type': 'application/xml' }, body } },
      record,
    };
  };
  for (const [name, value] of Object.entries(required)) {
    if (headers.get(name.toLowerCase()) !== value) return deny('AccessDenied', `missing or wrong ${name}`);
    headers.delete(name.toLowerCase());
  }
  if (!auth) return deny('AccessDenied', 'no AWS4-HMAC-SHA256 Authorization header');
  if (auth.accessKeyId !== options.accessKeyId) return deny('InvalidAccessKeyId', 'unknown access key id');
  const expected = expectedSignature(req, headers, auth, options);
  if (expected === undefined || !sameHex(expected, auth.signature)) {
    return deny('SignatureDoesNotMatch', 'the request signature does not match');
  }
  const forwardHeaders: OutgoingHttpHeaders = {};
  for (const [name, value] of headers) forwardHeaders[name] = value;
  return { result: { forwardHeaders }, record };
}

interface Authorization {
  accessKeyId: string;
  scope: string[];
  signedHeaders: string[];
  signature: string;
}

function parseAuthorization(value: string): Authorization | undefined {
  const m = /^AWS4-HMAC-SHA256 Credential=([^,]+),\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]+)$/.exec(
    value,
  );
  if (!m) return undefined;
  const [accessKeyId = '', ...scope] = (m[1] ?? '').split('/');
  return { accessKeyId, scope, signedHeaders: (m[2] ?? '').split(';'), signature: m[3] ?? '' };
}

function expectedSignature(
  req: IncomingMessage,
  headers: Map<string, string>,
  auth: Authorization,
  options: SigV4ProxyOptions,
): string | undefined {
  const [date, region, service, terminator] = auth.scope;
  const amzDate = headers.get('x-amz-date');
  const payloadHash = headers.get('x-amz-content-sha256');
  if (!date || !region || !service || terminator !== 'aws4_request') return undefined;
  if (!amzDate?.startsWith(date) || region !== options.region || payloadHash === undefined) return undefined;
  const canonicalHeaders: string[] = [];
  for (const name of auth.signedHeaders) {
    const value = headers.get(name);
    if (value === undefined) return undefined; // a signed header that did not arrive
    canonicalHeaders.push(`${name}:${value}\n`);
  }
  const [path = '/', query = ''] = (req.url ?? '/').split(/\?(.*)/s);
  const canonicalRequest = [
    req.method ?? 'GET',
    path,
    canonicalQuery(query),
    canonicalHeaders.join(''),
    auth.signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  const scope = auth.scope.join('/');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  let key: Buffer = Buffer.from(`AWS4${options.secretAccessKey}`, 'utf8');
  for (const part of [date, region, service, terminator]) key = hmac(key, part);
  return hmac(key, stringToSign).toString('hex');
}

/** Lower-case names; repeated headers joined with ","; values trimmed, inner spaces collapsed. */
function headerMap(raw: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    const value = (raw[i + 1] ?? '').trim().replace(/\s+/g, ' ');
    const before = map.get(name);
    map.set(name, before === undefined ? value : `${before},${value}`);
  }
  return map;
}

function canonicalQuery(query: string): string {
  if (query === '') return '';
  const pairs = query.split('&').map((part) => {
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    return [strictEscape(decodeURIComponent(k)), strictEscape(decodeURIComponent(v))] as const;
  });
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** RFC 3986 unreserved characters stay, everything else is %XX (encodeURIComponent leaves !'()*). */
function strictEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}
