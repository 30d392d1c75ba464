// A plain TCP pass-through in front of a server that notes every HTTP/1.1 request line the clients
// send (method, path, query, time), for benches where the server runs as its own process and cannot
// record them itself. It looks for request lines in the client's bytes; a request body could hold a
// matching line only by a freak of chance, which a bench can live with.
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  /** The path without the bucket, e.g. `abc.narinfo` or `` for the bucket itself. */
  key: string;
  query: URLSearchParams;
  /** performance.now() when the request line passed. */
  at: number;
  connection: number;
}

export interface RequestCounter {
  endpoint: string;
  /** Requests seen since the last take(), which forgets them. */
  take(): SeenRequest[];
  close(): Promise<void>;
}

// No anchor before the method: the next request follows a body's last byte directly.
const REQUEST_LINE = /(GET|PUT|HEAD|POST|DELETE) (\/[^ \r\n]*) HTTP\/1\.1\r\n/g;

export async function startRequestCounter(target: string): Promise<RequestCounter> {
  const url = new URL(target);
  let seen: SeenRequest[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const connection = ++connections;
    const upstream = net.connect({ host: url.hostname, port: Number(url.port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    // A request line split between two chunks is found by keeping the end of the previous one.
    let tail = '';
    client.on('data', (chunk: Buffer) => {
      const text = tail + chunk.toString('latin1', 0, Math.min(chunk.length, 64 * 1024));
      for (const m of text.matchAll(REQUEST_LINE)) {
        if (m.index + m[0].length <= tail.length) continue; // seen with the previous chunk
        const u = new URL(m[2]!, 'http://x');
        const key = decodeURIComponent(u.pathname).split('/').slice(2).join('/');
        seen.push({ method: m[1]!, key, query: u.searchParams, at: performance.now(), connection });
      }
      tail = text.slice(-300);
    });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    take: () => {
      const out = seen;
      seen = [];
      return out;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Round trips in series: the requests sorted by start, grouped into waves where a request starting
 * after every earlier one could have had its answer counts as a new wave. A rough figure: a request
 * waiting on nothing but a busy connection pool still counts as a wave.
 */
export function waves(requests: readonly SeenRequest[], rttMs: number): number {
  const starts = requests.map((r) => r.at).sort((a, b) => a - b);
  let n = 0;
  let waveStart = -Infinity;
  for (const t of starts) {
    if (t - waveStart >= rttMs * 0.9) {
      n++;
      waveStart = t;
    }
  }
  return n;
}

export function countByOperation(requests: readonly SeenRequest[]): string {
  const counts = new Map<string, number>();
  for (const r of requests) {
    const op =
      r.method === 'GET' && r.key === ''
        ? 'LIST'
        : r.method === 'PUT' && r.query.has('partNumber')
          ? 'PART'
          : r.method === 'POST'
            ? 'MPU'
            : r.method;
    counts.set(op, (counts.get(op) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}
