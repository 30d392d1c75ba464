// Serving the daemon's metrics over HTTP for Prometheus (node:http, no dependency): GET /metrics
// answers the text format; anything else is 404 or 405. Bound only where loft.metrics_listen says
// (documented as a loopback address): the numbers are not secret, but nothing else is served.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../errors.js';

/** Host and port, as loft.metrics_listen gives them (handed down as a plain value by cli/). */
export interface ListenAddress {
  host: string;
  port: number;
}

export interface MetricsServer {
  /** Where it listens, with the real port when 0 was asked for. */
  address: ListenAddress;
  close(): Promise<void>;
}

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export async function startMetricsServer(at: ListenAddress, render: () => string): Promise<MetricsServer> {
  // Loaded here, and not by an import statement: an ES import of node:http builds a module namespace
  // from every export, which runs node:http's lazy getters (WebSocket, MessageEvent, CloseEvent) and
  // so loads Node's bundled undici with node:http2 and perf_hooks: about 12 MB of resident memory
  // (RSS, half of it file-backed) measured here, in every daemon, also with metrics off.
  const { createServer } = process.getBuiltinModule('node:http');
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('GET only\n');
    } else {
      let body: string;
      try {
        body = render();
      } catch {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
        return;
      }
      res.writeHead(200, { 'content-type': CONTENT_TYPE });
      res.end(req.method === 'HEAD' ? undefined : body);
    }
  });
  await listen(server, at);
  const bound = server.address() as AddressInfo;
  return {
    address: { host: at.host, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, at: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the address is in use' : (err.code ?? err.message);
      reject(
        new ConfigError(
          `loft.metrics_listen ${shown(at)}: cannot listen (${why}); choose another address or port`,
        ),
      );
    });
    server.listen(at.port, at.host, () => resolve());
  });
}

function shown(a: ListenAddress): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}
