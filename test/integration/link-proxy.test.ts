// The wide-area link proxy (test/helpers/link-proxy.ts) that the progress tests and `npm run bench
// -- wan` rely on: its bytes arrive whole and in order, a request waits at least the round trip plus
// the connection's handshake, and a body takes at least its size over the bandwidth.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { startLinkProxy } from '../helpers/link-proxy.js';

async function echoServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256');
    let n = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      n += c.length;
    });
    req.on('end', () => res.end(JSON.stringify({ n, sha256: hash.digest('hex') })));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

test('a 1 MiB body crosses an 8 Mbit/s, 100 ms link whole, in at least its serialisation time', async () => {
  const origin = await echoServer();
  const link = await startLinkProxy({ target: origin.url, rttMs: 100, mbitPerSecond: 8 });
  try {
    const body = randomBytes(1024 * 1024);
    const started = performance.now();
    const res = await fetch(`${link.endpoint}/x`, { method: 'PUT', body });
    const answer = (await res.json()) as { n: number; sha256: string };
    const ms = performance.now() - started;
    assert.equal(answer.n, body.length);
    assert.equal(answer.sha256, createHash('sha256').update(body).digest('hex'));
    // 8 Mbit/s is 1 MB/s: 1,048,576 bytes need 1,049 ms, plus a handshake and a round trip.
    assert.ok(ms >= 1049 + 200 - 5, `took ${ms.toFixed(0)} ms`);
    assert.ok(link.bytes().up >= body.length);
  } finally {
    await link.close();
    await origin.close();
  }
});

test('connections share the bandwidth: two 512 KiB bodies at once take as long as one of 1 MiB', async () => {
  const origin = await echoServer();
  const link = await startLinkProxy({ target: origin.url, rttMs: 20, mbitPerSecond: 8 });
  try {
    const started = performance.now();
    const bodies = [randomBytes(512 * 1024), randomBytes(512 * 1024)];
    const agent = new http.Agent({ keepAlive: false });
    const answers = await Promise.all(
      bodies.map(
        (body) =>
          new Promise<{ n: number }>((resolve, reject) => {
            const req = http.request(`${link.endpoint}/y`, { method: 'PUT', agent }, (res) => {
              let text = '';
              res.on('data', (c: Buffer) => (text += c.toString()));
              res.on('end', () => resolve(JSON.parse(text) as { n: number }));
            });
            req.on('error', reject);
            req.end(body);
          }),
      ),
    );
    const ms = performance.now() - started;
    assert.deepEqual(
      answers.map((a) => a.n),
      [512 * 1024, 512 * 1024],
    );
    assert.equal(link.connections(), 2);
    assert.ok(ms >= 1049 - 5, `took ${ms.toFixed(0)} ms`);
  } finally {
    await link.close();
    await origin.close();
  }
});
