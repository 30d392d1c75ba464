// The payload hash a multipart part is signed with (src/storage/s3-multipart.ts): over https
// `UNSIGNED-PAYLOAD`, so the SDK does not hash every part a second time; over plain http the
// part's own sha256. Checked on the wire, by small servers that record what arrives (over TLS
// with a throwaway CA), and the header is among the signed ones either way.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { createS3Client } from '../../src/storage/s3-client.js';
import { uploadPart, type MultipartTarget } from '../../src/storage/s3-multipart.js';
import { makeTestPki, opensslMissing, type TestPki } from '../helpers/test-pki.js';

interface Seen {
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** Answers every request like UploadPart (200 with an ETag) and records it. */
function recordingHandler(seen: Seen[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ headers: req.headers, body });
      res.writeHead(200, { ETag: `"${createHash('md5').update(body).digest('hex')}"` }).end();
    });
  };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function target(endpoint: string): MultipartTarget {
  const client = createS3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'AKIDPARTTEST', secretAccessKey: 'part-test-secret' },
    extraHeaders: {},
    maxAttempts: 1,
  });
  return { client, bucket: 'b', prefix: '', logger: undefined, fail: (_op, err) => err as Error };
}

async function sendPart(t: MultipartTarget, body: Buffer): Promise<void> {
  const md5 = createHash('md5').update(body).digest();
  await uploadPart(t, { key: 'nar/x.nar.zst', uploadId: 'u1', partNumber: 1, body, md5 });
}

function signedHeaders(headers: IncomingMessage['headers']): string[] {
  const m = /SignedHeaders=([^,]+)/.exec(String(headers.authorization));
  return m ? m[1]!.split(';') : [];
}

const missing = opensslMissing();

void describe('payload hash of a multipart part', { skip: missing ?? false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'loft-part-payload-'));
  const servers: Server[] = [];
  let pki: TestPki;
  after(async () => {
    for (const s of servers) await new Promise((resolve) => s.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });
  before(async () => {
    pki = await makeTestPki(dir);
    // Trust the throwaway CA in this process, as NODE_EXTRA_CA_CERTS would.
    tls.setDefaultCACertificates([...tls.getCACertificates('default'), readFileSync(pki.caCert, 'utf8')]);
  });

  void test('over https: UNSIGNED-PAYLOAD, signed, with the Content-MD5 the server checks', async () => {
    const seen: Seen[] = [];
    const server = createHttpsServer(
      { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) },
      recordingHandler(seen),
    );
    servers.push(server);
    const port = await listen(server);
    const body = randomBytes(64 * 1024);
    await sendPart(target(`https://127.0.0.1:${port}`), body);
    assert.equal(seen.length, 1);
    const { headers } = seen[0]!;
    assert.ok(seen[0]!.body.equals(body));
    assert.equal(headers['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD');
    assert.ok(signedHeaders(headers).includes('x-amz-content-sha256'), String(headers.authorization));
    assert.equal(headers['content-md5'], createHash('md5').update(body).digest('base64'));
  });

  void test('over plain http: the part stays signed with its sha256', async () => {
    const seen: Seen[] = [];
    const server = createHttpServer(recordingHandler(seen));
    servers.push(server);
    const port = await listen(server);
    const body = randomBytes(64 * 1024);
    await sendPart(target(`http://127.0.0.1:${port}`), body);
    assert.equal(seen.length, 1);
    const { headers } = seen[0]!;
    assert.equal(headers['x-amz-content-sha256'], createHash('sha256').update(body).digest('hex'));
    assert.ok(signedHeaders(headers).includes('x-amz-content-sha256'));
  });
});
