// The syntax of `loft.metrics_listen`, where the daemon serves Prometheus metrics:
//   <IPv4>:<port>      127.0.0.1:9464
//   [<IPv6>]:<port>    [::1]:9464
//   localhost:<port>
// Address literals only (and localhost), so where the numbers are exposed never depends on DNS.
// Port 0 lets the system pick a free port (the daemon logs the one it got). Pure.
import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
}

export const METRICS_LISTEN_SYNTAX =
  '"HOST:PORT" with an IP address or localhost, e.g. "127.0.0.1:9464" or "[::1]:9464" (port 0 to 65535)';

/** The address, or undefined when `text` is not valid (callers word the error). */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  const v6 = m[1];
  if (v6 !== undefined) return isIP(v6) === 6 ? { host: v6, port } : undefined;
  const host = m[2]!;
  return isIP(host) === 4 || host === 'localhost' ? { host, port } : undefined;
}

/** As written in messages and logs: IPv6 in brackets. */
export function formatListenAddress(a: ListenAddress): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}
