// `loft doctor`'s checks of an S3 endpoint below S3 itself: can a TCP connection be made, does TLS
// verify, and can a client without credentials read nix-cache-info (what a Nix substituter without
// S3 credentials does: plain HTTP GETs, HttpBinaryCacheStore). No AWS SDK here.
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { CheckResult } from './store-probe.js';
import { messageOf } from './store-probe.js';

export interface EndpointTarget {
  /** The endpoint as configured, or AWS's regional one. */
  url: URL;
  bucket: string;
  prefix: string;
  forcePathStyle: boolean;
}

const TIMEOUT_MS = 10_000;

export function endpointOf(endpoint: string | undefined, region: string): URL {
  return new URL(endpoint ?? `https://s3.${region}.amazonaws.com`);
}

function portOf(url: URL): number {
  return Number(url.port || (url.protocol === 'https:' ? 443 : 80));
}

export async function checkReach(url: URL): Promise<CheckResult> {
  const started = Date.now();
  const where = `${url.hostname}:${portOf(url)}`;
  try {
    await new Promise<void>((resolve, reject) => {
      const socket = tcpConnect({ host: url.hostname, port: portOf(url), timeout: TIMEOUT_MS });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('timeout', () => socket.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
      socket.once('error', reject);
    });
    return { id: 'reach', status: 'ok', detail: `${where} accepts connections (${Date.now() - started} ms)` };
  } catch (err) {
    return {
      id: 'reach',
      status: 'fail',
      detail: `cannot connect to ${where}: ${messageOf(err)}`,
      fix: 'check s3.endpoint (host and port), DNS and the network or firewall in between',
    };
  }
}

export async function checkTls(url: URL): Promise<CheckResult> {
  if (url.protocol !== 'https:') {
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    return loopback
      ? { id: 'tls', status: 'skip', detail: 'plain HTTP on this machine' }
      : {
          id: 'tls',
          status: 'warn',
          detail: 'plain HTTP: requests are signed, but NARs and narinfos travel unencrypted',
          fix: 'use an https:// endpoint unless the network in between is trusted',
        };
  }
  try {
    const detail = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({
        host: url.hostname,
        port: portOf(url),
        servername: url.hostname,
        timeout: TIMEOUT_MS,
      });
      socket.once('secureConnect', () => {
        const text = `${socket.getProtocol() ?? 'TLS'}, certificate verified for ${url.hostname}`;
        socket.destroy();
        resolve(text);
      });
      socket.once('timeout', () => socket.destroy(new Error('TLS handshake timed out')));
      socket.once('error', reject);
    });
    return { id: 'tls', status: 'ok', detail };
  } catch (err) {
    return {
      id: 'tls',
      status: 'fail',
      detail: `TLS to ${url.hostname} failed: ${messageOf(err)}`,
      fix: 'check the certificate (name, chain, expiry) or NODE_EXTRA_CA_CERTS for a private CA',
    };
  }
}

/** The URL Nix would fetch nix-cache-info from, in the configured addressing style. */
export function publicUrlOf(t: EndpointTarget, key: string): string {
  const u = new URL(t.url.href);
  if (t.forcePathStyle) u.pathname = `/${t.bucket}/${t.prefix}${key}`;
  else {
    u.hostname = `${t.bucket}.${u.hostname}`;
    u.pathname = `/${t.prefix}${key}`;
  }
  return u.href;
}

/** An anonymous GET, as a substituter without credentials sends it. */
export async function checkAnonymousRead(
  t: EndpointTarget,
  exists: boolean | undefined,
): Promise<CheckResult> {
  const url = publicUrlOf(t, 'nix-cache-info');
  let status: number;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    await res.arrayBuffer();
    status = res.status;
  } catch (err) {
    return { id: 'anonymous-read', status: 'warn', detail: `GET ${url} failed: ${messageOf(err)}` };
  }
  if (status === 200)
    return { id: 'anonymous-read', status: 'ok', detail: `GET ${url} without credentials: 200` };
  if (status === 404 && exists === false) {
    return { id: 'anonymous-read', status: 'skip', detail: 'no nix-cache-info yet to read' };
  }
  return {
    id: 'anonymous-read',
    status: 'warn',
    detail: `GET ${url} without credentials: ${status}`,
    fix:
      'substituters without S3 credentials cannot read the cache: allow s3:GetObject to everyone ' +
      '(a public-read bucket policy), or give Nix credentials (s3:// substituter or netrc)',
  };
}
