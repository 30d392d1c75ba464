// The HTTP store against small node:http servers that answer the way real ones can: 411 to a
// chunked body, 503 with Retry-After, 403 for an absent object, a 503 before 100 Continue.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { HttpObjectStore } from '../../../src/storage/http-object-store.js';

interface Seen {
  method: string;
  url: string;
  chunked: boolean;
  length: number;
}

const servers: Array<() => void> = [];
after(() => servers.forEach((close) => close()));

/** A server whose `handle` decides each answer; it records what each request carried. */
async function server(
  handle: (req: IncomingMessage, res: ServerResponse, seen: Seen[]) => Promise<void> | void,
): Promise<{ url: string; seen: Seen[]; bodies: Map<string, Buffer> }> {
  const seen: Seen[] = [];
  const bodies = new Map<string, Buffer>();
  const srv = createServer((req, res) => {
    void handle(req, res, seen);
  });
  // Answer `Expect: 100-continue` ourselves: the handler decides whether to go on.
  srv.on('checkContinue', (req, res) => srv.emit('request', req, res));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  servers.push(() => {
    srv.closeAllConnections();
    srv.close();
  });
  const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}/cache`;
  return { url, seen, bodies };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function store(url: string): HttpObjectStore {
  return new HttpObjectStore({
    url,
    extraHeaders: {},
    maxAttempts: 3,
    requestTimeoutMs: 10_000,
    retryBaseDelayMs: 1,
  });
}

function chunksOf(data: Buffer, size = 256 * 1024): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size));
  return Readable.from(parts);
}

describe('HttpObjectStore', () => {
  test('a server that refuses chunked bodies (411) before reading gets the NAR spooled, with its length', async () => {
    const srv = await server(async (req, res, seen) => {
      const chunked = req.headers['transfer-encoding'] === 'chunked';
      if (chunked) {
        seen.push({ method: req.method!, url: req.url!, chunked, length: 0 });
        res.writeHead(411).end(); // without reading the body, before 100 Continue
        return;
      }
      if (req.headers.expect === '100-continue') res.writeContinue();
      const body = await readBody(req);
      seen.push({ method: req.method!, url: req.url!, chunked, length: body.length });
      srv.bodies.set(req.url!, body);
      res.writeHead(201).end();
    });
    const s = store(srv.url);
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const acked: number[] = [];
    await s.putStream('nar/a.nar.zst', chunksOf(data), {
      contentType: 'application/x-nix-nar',
      onStored: (n) => acked.push(n),
    });
    assert.deepEqual(acked, [data.length], 'acknowledged once, by the spooled PUT, not counted twice');
    assert.deepEqual(
      srv.seen.map((r) => [r.method, r.url, r.chunked, r.length]),
      [
        ['PUT', '/cache/nar/a.nar.zst', true, 0],
        ['PUT', '/cache/nar/a.nar.zst', false, data.length],
      ],
    );
    assert.ok(srv.bodies.get('/cache/nar/a.nar.zst')!.equals(data));
    // The store remembers: the next large body goes straight to the spool, one request.
    await s.putStream('nar/b.nar.zst', chunksOf(data), { contentType: 'application/x-nix-nar' });
    assert.equal(srv.seen.length, 3);
    assert.equal(srv.seen[2]!.chunked, false);
    await s.close();
  });

  test('a server that takes chunked bodies gets the NAR streamed in one request', async () => {
    const srv = await server(async (req, res, seen) => {
      if (req.headers.expect === '100-continue') res.writeContinue();
      const body = await readBody(req);
      seen.push({
        method: req.method!,
        url: req.url!,
        chunked: req.headers['transfer-encoding'] === 'chunked',
        length: body.length,
      });
      srv.bodies.set(req.url!, body);
      res.writeHead(201).end();
    });
    const s = store(srv.url);
    const data = randomBytes(2 * 1024 * 1024);
    const acked: number[] = [];
    await s.putStream('nar/c.nar.zst', chunksOf(data), {
      contentType: 'application/x-nix-nar',
      onStored: (n) => acked.push(n),
    });
    assert.deepEqual(acked, [data.length]);
    assert.deepEqual(
      srv.seen.map((r) => [r.chunked, r.length]),
      [[true, data.length]],
    );
    assert.ok(srv.bodies.get('/cache/nar/c.nar.zst')!.equals(data));
    await s.close();
  });

  test('503 before 100 Continue is retried without losing a byte of the stream', async () => {
    let refused = 0;
    const srv = await server(async (req, res, seen) => {
      if (req.headers.expect === '100-continue' && refused++ === 0) {
        seen.push({ method: req.method!, url: req.url!, chunked: true, length: 0 });
        res.writeHead(503).end();
        return;
      }
      if (req.headers.expect === '100-continue') res.writeContinue();
      const body = await readBody(req);
      seen.push({ method: req.method!, url: req.url!, chunked: true, length: body.length });
      srv.bodies.set(req.url!, body);
      res.writeHead(201).end();
    });
    const s = store(srv.url);
    const data = randomBytes(2 * 1024 * 1024 + 5);
    await s.putStream('nar/d.nar.zst', chunksOf(data), { contentType: 'application/x-nix-nar' });
    assert.deepEqual(
      srv.seen.map((r) => r.length),
      [0, data.length],
    );
    assert.ok(srv.bodies.get('/cache/nar/d.nar.zst')!.equals(data));
    await s.close();
  });

  test('Retry-After is honoured; 403 and 404 read as absent (as Nix does); the content type is sent', async () => {
    let first = true;
    const types: string[] = [];
    const srv = await server(async (req, res) => {
      await readBody(req);
      if (req.method === 'HEAD') {
        res.writeHead(req.url!.includes('forbidden') ? 403 : 404).end();
        return;
      }
      types.push(req.headers['content-type'] ?? '');
      if (first) {
        first = false;
        res.writeHead(503, { 'retry-after': '1' }).end();
        return;
      }
      res.writeHead(204).end();
    });
    const s = store(srv.url);
    const started = Date.now();
    await s.putBytes('x.narinfo', 'StorePath: ...\n', { contentType: 'text/x-nix-narinfo' });
    assert.ok(Date.now() - started >= 950, `waited ${Date.now() - started} ms`);
    assert.deepEqual(types, ['text/x-nix-narinfo', 'text/x-nix-narinfo']);
    assert.equal(await s.head('forbidden.narinfo'), undefined);
    assert.equal(await s.head('missing.narinfo'), undefined);
    await s.close();
  });

  test('401 on a PUT is a definite auth failure; a 5xx that stays is transient', async () => {
    const srv = await server(async (req, res) => {
      await readBody(req);
      res.writeHead(req.url!.includes('auth') ? 401 : 502).end();
    });
    const s = store(srv.url);
    await assert.rejects(
      s.putBytes('auth.narinfo', 'x', { contentType: 'text/x-nix-narinfo' }),
      (err: unknown) => {
        const e = err as { code?: string; transient?: boolean; message: string };
        assert.equal(e.code, 'E_STORAGE_AUTH');
        assert.equal(e.transient, false);
        return true;
      },
    );
    await assert.rejects(
      s.putBytes('x.narinfo', 'x', { contentType: 'text/x-nix-narinfo' }),
      (err: unknown) => {
        const e = err as { code?: string; transient?: boolean };
        assert.equal(e.code, 'E_STORAGE');
        assert.equal(e.transient, true);
        return true;
      },
    );
    await s.close();
  });
});

describe('HttpObjectStore.checkAccess', () => {
  test('a web server answering every path with a page is not taken for a cache (every HEAD would say present)', async () => {
    const srv = await server(async (req, res) => {
      await readBody(req);
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>\n<body>welcome</body>\n</html>\n');
    });
    const s = store(srv.url);
    await assert.rejects(s.checkAccess(), (err: unknown) => {
      const e = err as { code?: string; message: string };
      assert.equal(e.code, 'E_STORAGE_NOT_CACHE');
      assert.match(
        e.message,
        /nix-cache-info is not a binary cache's nix-cache-info \(text\/html\): check http\.url/,
      );
      return true;
    });
    await s.close();
  });

  test("no nix-cache-info yet, Nix's, or nix-stored's JSON: accepted", async () => {
    for (const body of [
      undefined,
      'StoreDir: /nix/store\n',
      '{"Priority":30,"StoreDir":"/nix/store","WantMassQuery":1}',
    ]) {
      const srv = await server(async (req, res) => {
        await readBody(req);
        if (body === undefined) res.writeHead(404).end();
        else res.writeHead(200).end(body);
      });
      const s = store(srv.url);
      await s.checkAccess();
      await s.close();
    }
  });
});
