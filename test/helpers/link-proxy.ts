// A TCP proxy that behaves like a wide-area link, for tests and bench/ (this kernel has no netem):
// every byte crosses a bottleneck of fixed bandwidth, shared by all connections in one direction as
// a real uplink is, then waits half the round trip; a new connection waits one round trip before its
// first byte moves (TCP's handshake). Each direction is a FIFO: a chunk starts when the link is free
// and arrives `rtt/2` after its last bit left. A connection that has more than a window of bytes on
// the link is paused, so a sender sees backpressure as over TCP instead of writing into an
// unbounded buffer, and "the server has the bytes" still means they crossed the link.
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface LinkProxyOptions {
  /** Where connections go: http://host:port (only host and port are used). */
  target: string;
  /** Round trip added to every exchange, in ms. */
  rttMs: number;
  /** Bandwidth of each direction, in Mbit/s (10^6 bits). */
  mbitPerSecond: number;
  /** Bandwidth from the server to the client, when it differs (default: the same). */
  downMbitPerSecond?: number;
}

export interface LinkProxy {
  endpoint: string;
  /** Bytes carried from clients to the server and back. */
  bytes(): { up: number; down: number };
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** One direction of the link: when it is next free, in ms (fractional). */
class Bottleneck {
  private freeAt = 0;
  carried = 0;
  constructor(private readonly bytesPerMs: number) {}

  /** Returns when a chunk of `n` bytes handed over at `now` has fully left. */
  send(n: number, now: number): number {
    const start = Math.max(now, this.freeAt);
    this.freeAt = start + n / this.bytesPerMs;
    this.carried += n;
    return this.freeAt;
  }
}

export async function startLinkProxy(o: LinkProxyOptions): Promise<LinkProxy> {
  const target = new URL(o.target);
  const oneWay = o.rttMs / 2;
  const up = new Bottleneck((o.mbitPerSecond * 1e6) / 8 / 1000);
  const down = new Bottleneck(((o.downMbitPerSecond ?? o.mbitPerSecond) * 1e6) / 8 / 1000);
  // Twice the bandwidth-delay product, at least 256 KiB: what a TCP window lets be in flight.
  const windowBytes = Math.max(256 * 1024, Math.ceil(((o.mbitPerSecond * 1e6) / 8) * (o.rttMs / 1000) * 2));
  const sockets = new Set<net.Socket>();
  let accepted = 0;

  const server = net.createServer((client) => {
    accepted++;
    const readyAt = performance.now() + o.rttMs;
    const server = net.connect({ host: target.hostname, port: Number(target.port) });
    for (const s of [client, server]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        server.destroy();
      });
    }
    pipeOverLink(client, server, up, oneWay, readyAt, windowBytes);
    pipeOverLink(server, client, down, oneWay, readyAt, windowBytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bytes: () => ({ up: up.carried, down: down.carried }),
    connections: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Moves `from`'s bytes to `to` through `link`, in order, pausing `from` while its window is full. */
function pipeOverLink(
  from: net.Socket,
  to: net.Socket,
  link: Bottleneck,
  oneWay: number,
  readyAt: number,
  windowBytes: number,
): void {
  // One queue and one timer per direction of a connection: separate timers could fire out of order.
  const queue: Array<{ chunk: Buffer; at: number }> = [];
  let timer: NodeJS.Timeout | undefined;
  let inFlight = 0;
  let ended = false;
  const deliver = (): void => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.at <= now + 0.5) {
      const { chunk } = queue.shift()!;
      inFlight -= chunk.length;
      if (!to.destroyed) to.write(chunk);
    }
    if (inFlight <= windowBytes && from.isPaused() && !from.destroyed) from.resume();
    if (queue.length > 0) timer = setTimeout(deliver, queue[0]!.at - now);
    else if (ended && !to.destroyed) to.end();
  };
  const onLink = (chunk: Buffer): void => {
    const now = performance.now();
    queue.push({ chunk, at: link.send(chunk.length, now) + oneWay });
    inFlight += chunk.length;
    if (inFlight > windowBytes) from.pause();
    timer ??= setTimeout(deliver, queue[0]!.at - now);
  };
  // Bytes written before the handshake is over wait for it without holding the link for others.
  let early: Buffer[] | undefined = [];
  setTimeout(() => {
    const held = early ?? [];
    early = undefined;
    for (const chunk of held) onLink(chunk);
    if (ended && queue.length === 0 && !to.destroyed) to.end();
  }, readyAt - performance.now());
  from.on('data', (chunk: Buffer) => {
    if (early) early.push(chunk);
    else onLink(chunk);
  });
  from.on('end', () => {
    ended = true;
    if (!early && queue.length === 0 && !to.destroyed) to.end();
  });
}
